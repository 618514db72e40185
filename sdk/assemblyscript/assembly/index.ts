// wedge-proxy-wasm: AssemblyScript bindings for proxy-wasm ABI v0.2.1
// (github.com/proxy-wasm/spec, abi-versions/v0.2.1) and for Wedge's own
// properties (wedge.upstream, wedge.static). See ../README.md.
//
// A plugin's entry file re-exports the ABI callbacks and registers its root
// context:
//
//   export * from "wedge-proxy-wasm/assembly/exports";
//   import { RootContext, HttpContext, Action, setRootContext } from "wedge-proxy-wasm/assembly";
//   class Filter extends HttpContext {
//     onRequestHeaders(n: u32, eos: bool): Action { addRequestHeader("x-hello", "1"); return Action.Continue; }
//   }
//   class Root extends RootContext { createHttpContext(id: u32): HttpContext { return new Filter(id, this); } }
//   setRootContext((id: u32): RootContext => new Root(id));
//
// Strings are UTF-16 in AssemblyScript and UTF-8 on the wire: every
// function taking or returning a string converts. Functions returning
// `string | null` or `ArrayBuffer | null` return null when the host answers
// NOT_FOUND (or anything but OK).

import * as imp from "./imports";

export { JSONObject, parseJSONObject } from "./json";

// ---- ABI enums (spec "Enums") -------------------------------------------

/** proxy_status_t: what each host call returns. */
export enum Status {
  Ok = 0,
  NotFound = 1,
  BadArgument = 2,
  InvalidMemoryAccess = 6,
  Empty = 7,
  CasMismatch = 8,
  InternalFailure = 10,
  Unimplemented = 12,
}

/** proxy_action_t: what a phase callback returns. Pause holds the request
 * until continueRequest (or a local response); see sdk/README.md "Pause and resume". */
export enum Action {
  Continue = 0,
  Pause = 1,
}

/** proxy_log_level_t. Wedge maps them to slog Debug-4, Debug, Info, Warn, Error, Error+4. */
export enum LogLevel {
  Trace = 0,
  Debug = 1,
  Info = 2,
  Warn = 3,
  Error = 4,
  Critical = 5,
}

/** proxy_map_type_t: the header maps. */
export enum MapType {
  RequestHeaders = 0,
  RequestTrailers = 1,
  ResponseHeaders = 2,
  ResponseTrailers = 3,
  HttpCallResponseHeaders = 6,
  HttpCallResponseTrailers = 7,
}

/** proxy_buffer_type_t: the buffers. */
export enum BufferType {
  RequestBody = 0,
  ResponseBody = 1,
  HttpCallResponseBody = 4,
  VmConfiguration = 6,
  PluginConfiguration = 7,
}

/** proxy_metric_type_t. */
export enum MetricType {
  Counter = 0,
  Gauge = 1,
  Histogram = 2,
}

// ---- memory -------------------------------------------------------------

// Two scratch words the host writes a returned pointer and size (or an
// id) into. Host calls do not re-enter guest code other than the
// allocator, so one pair is enough.
const retPtr: usize = memory.data(8);
const retLen: usize = retPtr + 4;

/** The memory the host allocates for returned data (proxy_on_memory_allocate). */
export function allocate(size: usize): usize {
  return heap.alloc(size);
}

// takeBytes copies the host-allocated (ptr, len) at retPtr into an
// ArrayBuffer and frees it.
function takeBytes(): ArrayBuffer {
  const ptr = load<usize>(retPtr), len = load<u32>(retLen);
  const out = new ArrayBuffer(<i32>len);
  if (len > 0) {
    memory.copy(changetype<usize>(out), ptr, len);
    heap.free(ptr);
  }
  return out;
}

function takeString(): string {
  const ptr = load<usize>(retPtr), len = load<u32>(retLen);
  if (len == 0) return "";
  const s = String.UTF8.decodeUnsafe(ptr, len);
  heap.free(ptr);
  return s;
}

function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

function ptr(b: ArrayBuffer): usize {
  return changetype<usize>(b);
}

// ---- logging and time ---------------------------------------------------

/** Logs msg at level in Wedge's error log, labelled with the plugin (and the request). */
export function log(level: LogLevel, msg: string): void {
  const m = utf8(msg);
  imp.proxy_log(level, ptr(m), m.byteLength);
}
export function logDebug(msg: string): void { log(LogLevel.Debug, msg); }
export function logInfo(msg: string): void { log(LogLevel.Info, msg); }
export function logWarn(msg: string): void { log(LogLevel.Warn, msg); }
export function logError(msg: string): void { log(LogLevel.Error, msg); }

/** The lowest level Wedge's log records. */
export function logLevel(): LogLevel {
  imp.proxy_get_log_level(retPtr);
  return <LogLevel>load<u32>(retPtr);
}

/** Wall-clock time, nanoseconds since the Unix epoch. */
export function currentTimeNanoseconds(): u64 {
  const t = memory.data(8);
  imp.proxy_get_current_time_nanoseconds(t);
  return load<u64>(t);
}

/** Calls the root context's onTick every ms milliseconds (0 stops). */
export function setTickPeriod(ms: u32): Status {
  return <Status>imp.proxy_set_tick_period_milliseconds(ms);
}

// ---- headers --------------------------------------------------------------

/** One header field (or pseudo-field: ":path", ":status", ...). Names from the host are lower case. */
export class Header {
  constructor(public name: string, public value: string) {}
}

/** The first value of field name in map, or null when absent. */
export function getHeader(map: MapType, name: string): string | null {
  const k = utf8(name);
  if (imp.proxy_get_header_map_value(map, ptr(k), k.byteLength, retPtr, retLen) != Status.Ok) return null;
  return takeString();
}

/** Every field of map, pseudo-fields first, or an empty array when the map is not available. */
export function getHeaders(map: MapType): Header[] {
  if (imp.proxy_get_header_map_pairs(map, retPtr, retLen) != Status.Ok) return [];
  return deserializeHeaders(takeBytes());
}

/** Appends a field (sets a pseudo-field). */
export function addHeader(map: MapType, name: string, value: string): Status {
  const k = utf8(name), v = utf8(value);
  return <Status>imp.proxy_add_header_map_value(map, ptr(k), k.byteLength, ptr(v), v.byteLength);
}

/** Sets field name to value, replacing every field of that name. */
export function replaceHeader(map: MapType, name: string, value: string): Status {
  const k = utf8(name), v = utf8(value);
  return <Status>imp.proxy_replace_header_map_value(map, ptr(k), k.byteLength, ptr(v), v.byteLength);
}

/** Removes every field named name. */
export function removeHeader(map: MapType, name: string): Status {
  const k = utf8(name);
  return <Status>imp.proxy_remove_header_map_value(map, ptr(k), k.byteLength);
}

export function getRequestHeader(name: string): string | null { return getHeader(MapType.RequestHeaders, name); }
export function addRequestHeader(name: string, value: string): Status { return addHeader(MapType.RequestHeaders, name, value); }
export function replaceRequestHeader(name: string, value: string): Status { return replaceHeader(MapType.RequestHeaders, name, value); }
export function removeRequestHeader(name: string): Status { return removeHeader(MapType.RequestHeaders, name); }
export function getResponseHeader(name: string): string | null { return getHeader(MapType.ResponseHeaders, name); }
export function addResponseHeader(name: string, value: string): Status { return addHeader(MapType.ResponseHeaders, name, value); }
export function replaceResponseHeader(name: string, value: string): Status { return replaceHeader(MapType.ResponseHeaders, name, value); }
export function removeResponseHeader(name: string): Status { return removeHeader(MapType.ResponseHeaders, name); }

/** Serializes headers as the spec's map serialization: u32 count, count × (u32 name size,
 * u32 value size), then each name and value followed by NUL. */
export function serializeHeaders(headers: Header[]): ArrayBuffer {
  const names = new Array<ArrayBuffer>(headers.length), values = new Array<ArrayBuffer>(headers.length);
  let size = 4 + 8 * headers.length;
  for (let i = 0; i < headers.length; i++) {
    names[i] = utf8(headers[i].name);
    values[i] = utf8(headers[i].value);
    size += names[i].byteLength + values[i].byteLength + 2;
  }
  const out = new ArrayBuffer(size);
  const base = ptr(out);
  store<u32>(base, headers.length);
  let data = base + 4 + 8 * headers.length;
  for (let i = 0; i < headers.length; i++) {
    const n = names[i], v = values[i];
    store<u32>(base + 4 + 8 * i, n.byteLength);
    store<u32>(base + 8 + 8 * i, v.byteLength);
    memory.copy(data, ptr(n), n.byteLength);
    data += n.byteLength;
    store<u8>(data++, 0);
    memory.copy(data, ptr(v), v.byteLength);
    data += v.byteLength;
    store<u8>(data++, 0);
  }
  return out;
}

/** Parses the spec's map serialization; a malformed map gives the pairs read before the fault. */
export function deserializeHeaders(b: ArrayBuffer): Header[] {
  const out = new Array<Header>();
  const base = ptr(b), end = base + <usize>b.byteLength;
  if (b.byteLength < 4) return out;
  const n = load<u32>(base);
  if (<u64>n * 8 + 4 > <u64>b.byteLength) return out;
  let data = base + 4 + 8 * n;
  for (let i: u32 = 0; i < n; i++) {
    const nl = load<u32>(base + 4 + 8 * i), vl = load<u32>(base + 8 + 8 * i);
    if (<u64>data + nl + vl + 2 > <u64>end) break;
    const name = String.UTF8.decodeUnsafe(data, nl);
    data += nl + 1;
    const value = String.UTF8.decodeUnsafe(data, vl);
    data += vl + 1;
    out.push(new Header(name, value));
  }
  return out;
}

// ---- buffers ------------------------------------------------------------

/** Up to max bytes of buffer buf from start, or null when the buffer is not available now. */
export function getBuffer(buf: BufferType, start: u32 = 0, max: u32 = 0xffffffff): ArrayBuffer | null {
  if (imp.proxy_get_buffer_bytes(buf, start, max, retPtr, retLen) != Status.Ok) return null;
  return takeBytes();
}

/** Replaces size bytes at start of a body with data: (0, 0) prepends, (len, 0) appends, (0, len) replaces all. */
export function setBuffer(buf: BufferType, start: u32, size: u32, data: ArrayBuffer): Status {
  return <Status>imp.proxy_set_buffer_bytes(buf, start, size, ptr(data), data.byteLength);
}

/** The whole body of buf (request or response, in its body phase) as a UTF-8 string, or null. */
export function getBodyString(buf: BufferType): string | null {
  const b = getBuffer(buf);
  return b == null ? null : String.UTF8.decode(b);
}

// ---- properties ---------------------------------------------------------

/** The raw value of property path ("request.url_path", dotted or NUL-separated), or null. */
export function getProperty(path: string): ArrayBuffer | null {
  const p = utf8(path);
  if (imp.proxy_get_property(ptr(p), p.byteLength, retPtr, retLen) != Status.Ok) return null;
  return takeBytes();
}

/** A string property, or null when Wedge has no value (NOT_FOUND). Empty strings are "". */
export function getPropertyString(path: string): string | null {
  const p = utf8(path);
  if (imp.proxy_get_property(ptr(p), p.byteLength, retPtr, retLen) != Status.Ok) return null;
  return takeString();
}

/** An int property (8 bytes little-endian), or def when absent or malformed. */
export function getPropertyInt(path: string, def: i64 = 0): i64 {
  const b = getProperty(path);
  if (b == null || b.byteLength != 8) return def;
  return load<i64>(ptr(b));
}

/** Sets property path to value (bytes of the string, UTF-8). */
export function setProperty(path: string, value: string): Status {
  const p = utf8(path), v = utf8(value);
  return <Status>imp.proxy_set_property(ptr(p), p.byteLength, ptr(v), v.byteLength);
}

// ---- Wedge's properties (sdk/README.md "Properties") ----------------------

/** Sends the request to upstream pool pool (wedge.upstream). Only in onRequestHeaders:
 * routing is decided when that phase ends. BadArgument: no such pool. */
export function setUpstream(pool: string): Status { return setProperty("wedge.upstream", pool); }
/** The pool set with setUpstream, or null. */
export function upstream(): string | null { return getPropertyString("wedge.upstream"); }
/** Serves the request from the static mount named name (wedge.static): one a plugin opened with
 * wedge_static_mount, as the built-in router does for its static routes. */
export function setStaticMount(name: string): Status { return setProperty("wedge.static", name); }
/** The request-target, query included (request.path). */
export function requestPath(): string | null { return getPropertyString("request.path"); }
/** The path without the query (request.url_path). */
export function requestURLPath(): string | null { return getPropertyString("request.url_path"); }
/** The query without "?" (request.query). */
export function requestQuery(): string | null { return getPropertyString("request.query"); }
/** The Host field (request.host). */
export function requestHost(): string | null { return getPropertyString("request.host"); }
/** The method (request.method). */
export function requestMethod(): string | null { return getPropertyString("request.method"); }
/** The request's id: the client's X-Request-Id, else Wedge's (request.id). */
export function requestID(): string | null { return getPropertyString("request.id"); }
/** The client's address, "ip:port" (source.address). */
export function sourceAddress(): string | null { return getPropertyString("source.address"); }
/** The response status (response.code), in response phases; 0 before. */
export function responseCode(): i32 { return <i32>getPropertyInt("response.code"); }
/** The plugin's name (plugin_name). */
export function pluginName(): string | null { return getPropertyString("plugin_name"); }

/** The value of cookie name in the request's Cookie fields (RFC 6265 §5.4), or null. */
export function requestCookie(name: string): string | null {
  const hs = getHeaders(MapType.RequestHeaders);
  for (let i = 0; i < hs.length; i++) {
    if (hs[i].name != "cookie") continue;
    const parts = hs[i].value.split(";");
    for (let j = 0; j < parts.length; j++) {
      const kv = parts[j].trim();
      const eq = kv.indexOf("=");
      if (eq > 0 && kv.substring(0, eq) == name) return kv.substring(eq + 1);
    }
  }
  return null;
}

// ---- responses and streams ----------------------------------------------

/** Answers the request (or replaces the response) with status, headers and body; the
 * current phase ends at once. Return Action.Pause from the callback after it. */
export function sendLocalResponse(status: u32, body: string, headers: Header[] = [], details: string = ""): Status {
  const d = utf8(details), b = utf8(body), h = serializeHeaders(headers);
  return <Status>imp.proxy_send_local_response(status, ptr(d), d.byteLength, ptr(b), b.byteLength,
    ptr(h), h.byteLength, -1);
}

/** Resumes the paused request (proxy_continue_stream(0)). */
export function continueRequest(): Status { return <Status>imp.proxy_continue_stream(0); }
/** Resumes the paused response (proxy_continue_stream(1)). */
export function continueResponse(): Status { return <Status>imp.proxy_continue_stream(1); }
/** Ends the exchange without a response: Wedge closes the client connection. */
export function closeRequest(): Status { return <Status>imp.proxy_close_stream(0); }

// ---- metrics --------------------------------------------------------------

/** Defines (or finds) metric name, exported as wedge_<name>{plugin="..."}; returns its id, 0 on error. */
export function defineMetric(type: MetricType, name: string): u32 {
  const n = utf8(name);
  if (imp.proxy_define_metric(type, ptr(n), n.byteLength, retPtr) != Status.Ok) return 0;
  return load<u32>(retPtr);
}
export function incrementMetric(id: u32, delta: i64): Status { return <Status>imp.proxy_increment_metric(id, delta); }
export function recordMetric(id: u32, value: u64): Status { return <Status>imp.proxy_record_metric(id, value); }

// ---- contexts ---------------------------------------------------------------

/** The plugin (root) context: one per VM; Wedge gives it id 1. Subclass it and override
 * createHttpContext to make your filter's contexts. */
export class RootContext {
  constructor(public id: u32) {}
  /** proxy_on_vm_start, with wedge.yaml's vm_config: as JSON. false stops start-up. */
  onVmStart(vmConfig: ArrayBuffer): bool { return true; }
  /** proxy_on_configure, with wedge.yaml's config: as JSON. false stops start-up. */
  onConfigure(config: ArrayBuffer): bool { return true; }
  /** proxy_on_tick, every setTickPeriod ms. */
  onTick(): void {}
  /** An HTTP call made with RootContext.httpCall answered (numHeaders 0: it failed). */
  onHttpCallResponse(token: u32, numHeaders: u32, bodySize: u32): void {}
  /** proxy_on_done at shutdown or reload. */
  onDone(): bool { return true; }
  /** Makes the context of a new request. */
  createHttpContext(id: u32): HttpContext { return new HttpContext(id, this); }
  /** Sends an HTTP call (see httpCall); the answer comes to onHttpCallResponse. */
  httpCall(pool: string, headers: Header[], body: ArrayBuffer | null, timeoutMs: u32): HttpCall {
    const c = dispatch(pool, headers, body, timeoutMs);
    return c;
  }
}

/** A request's context: subclass it and override the phases you need. Each phase returns an
 * Action; Wedge buffers, so the body phases run once with the whole body (endOfStream true). */
export class HttpContext {
  constructor(public id: u32, public root: RootContext) {}
  onRequestHeaders(numHeaders: u32, endOfStream: bool): Action { return Action.Continue; }
  onRequestBody(bodySize: u32, endOfStream: bool): Action { return Action.Continue; }
  onResponseHeaders(numHeaders: u32, endOfStream: bool): Action { return Action.Continue; }
  onResponseBody(bodySize: u32, endOfStream: bool): Action { return Action.Continue; }
  /** After the response was written: heads are still readable. */
  onLog(): void {}
  onDone(): bool { return true; }
  onDelete(): void {}
  /** An HTTP call made with this.httpCall answered, with this context current: read the answer
   * with getHttpCallResponseHeaders / getHttpCallResponseBody. numHeaders 0: the call failed. */
  onHttpCallResponse(token: u32, numHeaders: u32, bodySize: u32): void {}

  /** Sends an HTTP/1.1 request to upstream pool pool (proxy_http_call); headers need :method,
   * :path and :authority. Return Action.Pause from the phase and resume in onHttpCallResponse. */
  httpCall(pool: string, headers: Header[], body: ArrayBuffer | null, timeoutMs: u32): HttpCall {
    const c = dispatch(pool, headers, body, timeoutMs);
    if (c.status == Status.Ok) callouts.set(c.token, this);
    return c;
  }
}

/** The result of an httpCall: status (BadArgument: unknown pool or missing pseudo-fields) and
 * the call's token, which onHttpCallResponse receives. */
export class HttpCall {
  constructor(public status: Status, public token: u32) {}
}

function dispatch(pool: string, headers: Header[], body: ArrayBuffer | null, timeoutMs: u32): HttpCall {
  const u = utf8(pool), h = serializeHeaders(headers);
  const bp = body == null ? 0 : ptr(body), bl = body == null ? 0 : body.byteLength;
  const st = imp.proxy_http_call(ptr(u), u.byteLength, ptr(h), h.byteLength, bp, bl, 0, 0, timeoutMs, retPtr);
  return new HttpCall(<Status>st, load<u32>(retPtr));
}

/** The answer's header fields (":status" first) in onHttpCallResponse. */
export function getHttpCallResponseHeaders(): Header[] { return getHeaders(MapType.HttpCallResponseHeaders); }
/** The answer's body in onHttpCallResponse, or null. */
export function getHttpCallResponseBody(): ArrayBuffer | null { return getBuffer(BufferType.HttpCallResponseBody); }

function defaultRoot(id: u32): RootContext { return new RootContext(id); }

let rootFactory: (id: u32) => RootContext = defaultRoot;

/** Registers the function that makes the plugin's root context. Call it at the top level of
 * the entry file. */
export function setRootContext(factory: (id: u32) => RootContext): void {
  rootFactory = factory;
}

// The live contexts, by id, and the calls in flight, by token. Used by
// ./exports.ts.
export const roots = new Map<u32, RootContext>();
export const streams = new Map<u32, HttpContext>();
export const callouts = new Map<u32, HttpContext>();

/** @internal Makes a context: a root one (parent 0) or a request's. */
export function createContext(id: u32, parent: u32): void {
  if (parent == 0) {
    roots.set(id, rootFactory(id));
    return;
  }
  const root = roots.has(parent) ? roots.get(parent) : rootFactory(parent);
  streams.set(id, root.createHttpContext(id));
}
