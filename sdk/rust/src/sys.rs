//! The raw host calls of proxy-wasm ABI v0.2.1 (spec "Functions exposed by
//! the host"), imported from module `env`. Pointers and `usize` are 32-bit
//! on wasm32; every call returns a `proxy_status_t`. Off wasm32 (native
//! `cargo test`) each call is a stub answering UNIMPLEMENTED (12), so the
//! pure parts of the crate build and test without a host.

macro_rules! host_calls {
    ($( fn $name:ident ( $($arg:ident : $ty:ty),* ) ; )*) => {
        #[cfg(target_arch = "wasm32")]
        #[link(wasm_import_module = "env")]
        extern "C" {
            $( pub fn $name($($arg: $ty),*) -> u32; )*
        }
        $(
            #[cfg(not(target_arch = "wasm32"))]
            #[allow(unused_variables, clippy::missing_safety_doc)]
            pub unsafe fn $name($($arg: $ty),*) -> u32 { 12 }
        )*
    };
}

host_calls! {
    fn proxy_log(level: u32, msg: *const u8, msg_len: usize);
    fn proxy_get_log_level(ret_level: *mut u32);
    fn proxy_get_current_time_nanoseconds(ret_time: *mut u64);
    fn proxy_set_tick_period_milliseconds(period: u32);
    fn proxy_get_property(path: *const u8, path_len: usize, ret_data: *mut *mut u8, ret_size: *mut usize);
    fn proxy_set_property(path: *const u8, path_len: usize, data: *const u8, data_len: usize);
    fn proxy_get_header_map_value(map: u32, key: *const u8, key_len: usize, ret_data: *mut *mut u8, ret_size: *mut usize);
    fn proxy_add_header_map_value(map: u32, key: *const u8, key_len: usize, value: *const u8, value_len: usize);
    fn proxy_replace_header_map_value(map: u32, key: *const u8, key_len: usize, value: *const u8, value_len: usize);
    fn proxy_remove_header_map_value(map: u32, key: *const u8, key_len: usize);
    fn proxy_get_header_map_pairs(map: u32, ret_data: *mut *mut u8, ret_size: *mut usize);
    fn proxy_set_header_map_pairs(map: u32, data: *const u8, data_len: usize);
    fn proxy_get_buffer_bytes(buffer: u32, start: usize, max_size: usize, ret_data: *mut *mut u8, ret_size: *mut usize);
    fn proxy_set_buffer_bytes(buffer: u32, start: usize, size: usize, data: *const u8, data_len: usize);
    fn proxy_get_buffer_status(buffer: u32, ret_len: *mut usize, ret_flags: *mut u32);
    fn proxy_send_local_response(status: u32, details: *const u8, details_len: usize, body: *const u8, body_len: usize, headers: *const u8, headers_len: usize, grpc_status: i32);
    fn proxy_continue_stream(stream: u32);
    fn proxy_close_stream(stream: u32);
    fn proxy_get_status(ret_code: *mut u32, ret_msg: *mut *mut u8, ret_msg_len: *mut usize);
    fn proxy_get_shared_data(key: *const u8, key_len: usize, ret_data: *mut *mut u8, ret_size: *mut usize, ret_cas: *mut u32);
    fn proxy_set_shared_data(key: *const u8, key_len: usize, data: *const u8, data_len: usize, cas: u32);
    fn proxy_register_shared_queue(name: *const u8, name_len: usize, ret_id: *mut u32);
    fn proxy_resolve_shared_queue(vm_id: *const u8, vm_id_len: usize, name: *const u8, name_len: usize, ret_id: *mut u32);
    fn proxy_enqueue_shared_queue(id: u32, data: *const u8, data_len: usize);
    fn proxy_dequeue_shared_queue(id: u32, ret_data: *mut *mut u8, ret_size: *mut usize);
    fn proxy_define_metric(kind: u32, name: *const u8, name_len: usize, ret_id: *mut u32);
    fn proxy_increment_metric(id: u32, delta: i64);
    fn proxy_record_metric(id: u32, value: u64);
    fn proxy_get_metric(id: u32, ret_value: *mut u64);
    fn proxy_http_call(upstream: *const u8, upstream_len: usize, headers: *const u8, headers_len: usize, body: *const u8, body_len: usize, trailers: *const u8, trailers_len: usize, timeout_ms: u32, ret_token: *mut u32);
    fn proxy_set_effective_context(context_id: u32);
    fn proxy_done();
    fn proxy_call_foreign_function(name: *const u8, name_len: usize, args: *const u8, args_len: usize, ret_data: *mut *mut u8, ret_size: *mut usize);
}
