// The callbacks proxy-wasm ABI v0.2.1 hosts call ("Functions exposed by the
// Wasm module"), dispatching to the contexts of ./index.ts. A plugin's entry
// file re-exports them:
//
//   export * from "wedge-proxy-wasm/assembly/exports";

import {
  Action, BufferType, allocate, createContext, roots, streams, callouts, getBuffer, RootContext, HttpContext,
} from "./index";
import { proxy_set_effective_context } from "./imports";

export function proxy_abi_version_0_2_1(): void {}

export function proxy_on_memory_allocate(size: usize): usize {
  return allocate(size);
}

export function proxy_on_context_create(id: u32, parent: u32): void {
  createContext(id, parent);
}

function rootOf(id: u32): RootContext | null {
  return roots.has(id) ? roots.get(id) : null;
}

function streamOf(id: u32): HttpContext | null {
  return streams.has(id) ? streams.get(id) : null;
}

function config(buf: BufferType, size: u32): ArrayBuffer {
  if (size == 0) return new ArrayBuffer(0);
  const b = getBuffer(buf, 0, size);
  return b == null ? new ArrayBuffer(0) : b;
}

export function proxy_on_vm_start(id: u32, size: u32): bool {
  const r = rootOf(id);
  return r == null || r.onVmStart(config(BufferType.VmConfiguration, size));
}

export function proxy_on_configure(id: u32, size: u32): bool {
  const r = rootOf(id);
  return r == null || r.onConfigure(config(BufferType.PluginConfiguration, size));
}

export function proxy_on_tick(id: u32): void {
  const r = rootOf(id);
  if (r != null) r.onTick();
}

export function proxy_on_request_headers(id: u32, numHeaders: u32, endOfStream: u32): u32 {
  const s = streamOf(id);
  return s == null ? Action.Continue : s.onRequestHeaders(numHeaders, endOfStream != 0);
}

export function proxy_on_request_body(id: u32, size: u32, endOfStream: u32): u32 {
  const s = streamOf(id);
  return s == null ? Action.Continue : s.onRequestBody(size, endOfStream != 0);
}

export function proxy_on_response_headers(id: u32, numHeaders: u32, endOfStream: u32): u32 {
  const s = streamOf(id);
  return s == null ? Action.Continue : s.onResponseHeaders(numHeaders, endOfStream != 0);
}

export function proxy_on_response_body(id: u32, size: u32, endOfStream: u32): u32 {
  const s = streamOf(id);
  return s == null ? Action.Continue : s.onResponseBody(size, endOfStream != 0);
}

export function proxy_on_log(id: u32): void {
  const s = streamOf(id);
  if (s != null) s.onLog();
}

export function proxy_on_done(id: u32): bool {
  const s = streamOf(id);
  if (s != null) return s.onDone();
  const r = rootOf(id);
  return r == null || r.onDone();
}

export function proxy_on_delete(id: u32): void {
  const s = streamOf(id);
  if (s != null) {
    s.onDelete();
    streams.delete(id);
    return;
  }
  roots.delete(id);
}

export function proxy_on_http_call_response(id: u32, token: u32, numHeaders: u32, bodySize: u32, numTrailers: u32): void {
  if (callouts.has(token)) {
    const s = callouts.get(token);
    callouts.delete(token);
    if (!streams.has(s.id)) return; // the request is gone
    proxy_set_effective_context(s.id);
    s.onHttpCallResponse(token, numHeaders, bodySize);
    return;
  }
  const r = rootOf(id);
  if (r != null) r.onHttpCallResponse(token, numHeaders, bodySize);
}
