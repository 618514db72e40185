// filter.ts: a proxy-wasm (ABI v0.2.1) filter in AssemblyScript against the
// raw ABI. It logs each request's path, sends /api/ requests to the "api"
// pool (wedge.upstream) and adds x-from-as: 1 to every request.
//
// Built with AssemblyScript 0.28 (npm install assemblyscript):
//
//	npx asc filter.ts -o filter_as.wasm -O --use abort=
//
// --use abort= drops the env.abort import (Wedge provides one, but the
// module is smaller without it).
@external("env", "proxy_log")
declare function proxy_log(level: u32, msg: usize, len: usize): u32;
@external("env", "proxy_get_property")
declare function proxy_get_property(path: usize, pathLen: usize, value: usize, valueLen: usize): u32;
@external("env", "proxy_set_property")
declare function proxy_set_property(path: usize, pathLen: usize, value: usize, valueLen: usize): u32;
@external("env", "proxy_add_header_map_value")
declare function proxy_add_header_map_value(map: u32, key: usize, keyLen: usize, value: usize, valueLen: usize): u32;

// utf8 returns a string's UTF-8 bytes (AssemblyScript strings are UTF-16).
function utf8(s: string): ArrayBuffer { return String.UTF8.encode(s); }

function setProperty(path: string, value: string): u32 {
  const p = utf8(path), v = utf8(value);
  return proxy_set_property(changetype<usize>(p), p.byteLength, changetype<usize>(v), v.byteLength);
}

function addRequestHeader(key: string, value: string): u32 {
  const k = utf8(key), v = utf8(value);
  return proxy_add_header_map_value(0, changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength);
}

// scratch words the host writes a returned pointer and length into
const ret = memory.data(8);

export function proxy_abi_version_0_2_1(): void {}

export function proxy_on_memory_allocate(size: usize): usize {
  return heap.alloc(size);
}

export function proxy_on_context_create(id: u32, parent: u32): void {}

export function proxy_on_request_headers(id: u32, numHeaders: u32, endOfStream: u32): u32 {
  const path = utf8("request.url_path");
  if (proxy_get_property(changetype<usize>(path), path.byteLength, ret, ret + 4) == 0) {
    const ptr = load<u32>(ret), len = load<u32>(ret + 4);
    proxy_log(2, ptr, len);
    if (String.UTF8.decodeUnsafe(ptr, len).startsWith("/api/")) setProperty("wedge.upstream", "api");
    if (len > 0) heap.free(ptr);
  }
  addRequestHeader("x-from-as", "1");
  return 0; // Continue
}
