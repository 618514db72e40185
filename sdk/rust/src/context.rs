//! The context model and the callbacks the module exports.
//!
//! Wedge creates one root (plugin) context per VM, id 1, parent 0, and one
//! HTTP context per request per plugin, whose parent is the root. The
//! exports below look the context up by id and call its trait method; the
//! context is taken out of the table during the call, so a callback may
//! make any host call.

use crate::{sys, Action};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// The plugin (root) context: one per VM, alive from start-up to shutdown.
/// It makes an [`HttpContext`] for each request and gets the plugin-wide
/// callbacks. Every method has a default that does nothing and succeeds.
pub trait RootContext {
    /// `proxy_on_vm_start`: the VM started; read the VM configuration with
    /// [`crate::buffer::vm_configuration`]. `false` refuses to start.
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    /// `proxy_on_configure`: read the plugin configuration with
    /// [`crate::buffer::plugin_configuration`]. `false` refuses the
    /// configuration (Wedge does not start, or keeps the old one on reload).
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        true
    }

    /// Makes the context of a new request (`proxy_on_context_create` with
    /// this root as parent). `None`: the plugin ignores the request.
    fn create_http_context(&mut self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        None
    }

    /// `proxy_on_tick`, every [`crate::time::set_tick_period`].
    fn on_tick(&mut self) {}

    /// `proxy_on_queue_ready`: an item arrived in a queue this VM
    /// registered (one call per item).
    fn on_queue_ready(&mut self, _queue_id: u32) {}

    /// `proxy_on_http_call_response` for a call the root context made
    /// (calls made by an HTTP context go to that context).
    fn on_http_call_response(&mut self, _token: u32, _num_headers: usize, _body_size: usize, _num_trailers: usize) {}

    /// `proxy_on_done` at shutdown or reload: `false` delays the end until
    /// `proxy_done` (Wedge waits up to 1 s).
    fn on_done(&mut self) -> bool {
        true
    }
}

/// A request's context in this plugin. Every method has a default that
/// continues.
pub trait HttpContext {
    /// `proxy_on_request_headers`: the request head is read, the body not
    /// yet. `end_of_stream` is true when the request has no body. Routing
    /// ([`crate::property::set_upstream`]) is decided when this phase ends.
    fn on_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    /// `proxy_on_request_body`: the whole request body is buffered (called
    /// with size 0 too); `end_of_stream` is always true in Wedge.
    fn on_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    /// `proxy_on_response_headers`: the whole response is buffered.
    fn on_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    /// `proxy_on_response_body`: the whole response body.
    fn on_response_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    /// The answer to a [`crate::http::dispatch_call`] this context made.
    fn on_http_call_response(&mut self, _token: u32, _num_headers: usize, _body_size: usize, _num_trailers: usize) {}

    /// `proxy_on_log`: the response was sent; heads are still readable.
    fn on_log(&mut self) {}
}

type RootFactory = Box<dyn FnMut(u32) -> Box<dyn RootContext>>;

enum Ctx {
    Root(Box<dyn RootContext>),
    Http(Box<dyn HttpContext>),
    /// Taken out for a callback, or a request the root chose to ignore.
    Empty,
}

#[derive(Default)]
struct State {
    factory: Option<RootFactory>,
    contexts: BTreeMap<u32, Ctx>,
    /// The context whose callback runs now (0 outside callbacks).
    current: u32,
    /// proxy_http_call token -> the context that made the call.
    calls: BTreeMap<u32, u32>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Registers the factory of the root context, called once per VM. Call it
/// from [`crate::main!`].
pub fn set_root_context(factory: impl FnMut(u32) -> Box<dyn RootContext> + 'static) {
    STATE.with(|s| s.borrow_mut().factory = Some(Box::new(factory)));
}

/// Registers only an HTTP context factory, for plugins without
/// configuration or plugin-wide state: a root context that accepts any
/// configuration makes each request's context with `factory`.
pub fn set_http_context(factory: impl FnMut(u32) -> Box<dyn HttpContext> + 'static) {
    let factory = std::rc::Rc::new(RefCell::new(factory));
    set_root_context(move |_| Box::new(HttpOnly(factory.clone())));
}

struct HttpOnly<F>(std::rc::Rc<RefCell<F>>);

impl<F: FnMut(u32) -> Box<dyn HttpContext>> RootContext for HttpOnly<F> {
    fn create_http_context(&mut self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some((self.0.borrow_mut())(context_id))
    }
}

/// Records who made call `token` (from http::dispatch_call).
pub(crate) fn note_call(token: u32) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let cur = s.current;
        s.calls.insert(token, cur);
    });
}

/// Takes context `id` out of the table, runs `f` on it with `id` current,
/// and puts it back (unless `keep` is false).
fn with_ctx<R>(id: u32, keep: bool, f: impl FnOnce(&mut Ctx) -> R) -> R {
    let (mut ctx, prev) = STATE.with(|s| {
        let mut s = s.borrow_mut();
        let prev = std::mem::replace(&mut s.current, id);
        let ctx = if keep {
            s.contexts.get_mut(&id).map(|c| std::mem::replace(c, Ctx::Empty))
        } else {
            s.contexts.remove(&id)
        };
        (ctx.unwrap_or(Ctx::Empty), prev)
    });
    let r = f(&mut ctx);
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.current = prev;
        if keep {
            if let Some(slot) = s.contexts.get_mut(&id) {
                *slot = ctx;
            }
        }
    });
    r
}

fn http<R>(id: u32, default: R, f: impl FnOnce(&mut dyn HttpContext) -> R) -> R {
    with_ctx(id, true, |c| match c {
        Ctx::Http(h) => f(h.as_mut()),
        _ => default,
    })
}

fn root<R>(id: u32, default: R, f: impl FnOnce(&mut dyn RootContext) -> R) -> R {
    with_ctx(id, true, |c| match c {
        Ctx::Root(r) => f(r.as_mut()),
        _ => default,
    })
}

fn action(a: Action) -> u32 {
    match a {
        Action::Continue => 0,
        Action::Pause => 1,
    }
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The allocator the host uses for the values it returns; the SDK frees
/// them as `Vec<u8>` (align 1, exact size).
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    if size == 0 {
        return std::ptr::NonNull::dangling().as_ptr();
    }
    let mut v = Vec::<u8>::with_capacity(size);
    let p = v.as_mut_ptr();
    std::mem::forget(v);
    p
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(id: u32, parent: u32) {
    if parent == 0 {
        let factory = STATE.with(|s| s.borrow_mut().factory.take());
        let ctx = match factory {
            Some(mut f) => {
                let c = f(id);
                STATE.with(|s| s.borrow_mut().factory = Some(f));
                Ctx::Root(c)
            }
            None => Ctx::Root(Box::new(HttpOnly(std::rc::Rc::new(RefCell::new(|_: u32| -> Box<dyn HttpContext> { Box::new(Nothing) }))))),
        };
        STATE.with(|s| s.borrow_mut().contexts.insert(id, ctx));
        return;
    }
    STATE.with(|s| s.borrow_mut().contexts.insert(id, Ctx::Empty));
    let made = root(parent, None, |r| r.create_http_context(id));
    if let Some(h) = made {
        STATE.with(|s| s.borrow_mut().contexts.insert(id, Ctx::Http(h)));
    }
}

struct Nothing;
impl HttpContext for Nothing {}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(id: u32, size: usize) -> u32 {
    root(id, true, |r| r.on_vm_start(size)) as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(id: u32, size: usize) -> u32 {
    root(id, true, |r| r.on_configure(size)) as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(id: u32) {
    root(id, (), |r| r.on_tick())
}

#[no_mangle]
pub extern "C" fn proxy_on_queue_ready(id: u32, queue: u32) {
    root(id, (), |r| r.on_queue_ready(queue))
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(id: u32, token: u32, headers: usize, body: usize, trailers: usize) {
    let owner = STATE.with(|s| s.borrow_mut().calls.remove(&token)).unwrap_or(id);
    let is_http = STATE.with(|s| matches!(s.borrow().contexts.get(&owner), Some(Ctx::Http(_))));
    if owner != id && is_http {
        unsafe { sys::proxy_set_effective_context(owner) };
        http(owner, (), |h| h.on_http_call_response(token, headers, body, trailers));
        return;
    }
    root(id, (), |r| r.on_http_call_response(token, headers, body, trailers))
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(id: u32, n: usize, eos: u32) -> u32 {
    action(http(id, Action::Continue, |h| h.on_request_headers(n, eos != 0)))
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(id: u32, size: usize, eos: u32) -> u32 {
    action(http(id, Action::Continue, |h| h.on_request_body(size, eos != 0)))
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(id: u32, n: usize, eos: u32) -> u32 {
    action(http(id, Action::Continue, |h| h.on_response_headers(n, eos != 0)))
}

#[no_mangle]
pub extern "C" fn proxy_on_response_body(id: u32, size: usize, eos: u32) -> u32 {
    action(http(id, Action::Continue, |h| h.on_response_body(size, eos != 0)))
}

#[no_mangle]
pub extern "C" fn proxy_on_log(id: u32) {
    http(id, (), |h| h.on_log())
}

#[no_mangle]
pub extern "C" fn proxy_on_done(id: u32) -> u32 {
    with_ctx(id, true, |c| match c {
        Ctx::Root(r) => r.on_done(),
        _ => true,
    }) as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(id: u32) {
    // Dropping the context is its end; drop it outside the state's borrow.
    with_ctx(id, false, |_| ());
    STATE.with(|s| s.borrow_mut().calls.retain(|_, owner| *owner != id));
}

/// Lets a root context that answered `false` to
/// [`RootContext::on_done`] finish (`proxy_done`).
pub fn done() -> crate::Result<()> {
    crate::check(unsafe { sys::proxy_done() })
}
