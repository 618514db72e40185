package proxy

import (
	"errors"

	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/pluginhost"
)

// ForeignFunctions returns the wedge_* host functions the pipeline offers
// plugins through proxy_call_foreign_function, for pluginhost.Config.
// Each is documented in sdk/README.md ("Wedge host calls"). They find the
// Handler and the exchange they act on through the attachments the
// pipeline gives every plugin (PluginSpec.Attachment, the Handler) and
// every stream (StreamInfo.Attachment, the exchange), so one plugin host
// serves every configuration generation.
func ForeignFunctions() map[string]pluginhost.ForeignFunction {
	return map[string]pluginhost.ForeignFunction{
		"wedge_compress_response": callCompressResponse,
		"wedge_static_mount":      wedgeStaticMount,
		"wedge_constant_route":    wedgeConstantRoute,
		"wedge_cache_lookup":      cacheLookup,
		"wedge_cache_serve":       cacheServe,
		"wedge_cache_store":       cacheStoreFn,
		"wedge_cache_invalidate":  cacheInvalidate,
		"wedge_cache_fill":        cacheFillFn,
		"wedge_cache_freshen":     cacheFreshen,
		"wedge_cache_fallback":    cacheFallbackFn,
		"wedge_cache_refresh":     cacheRefresh,
		"wedge_cache_pass":        cachePassFn,
	}
}

// errNoStream is returned by a wedge_* function that acts on a request
// when it is called from a root context.
var errNoStream = errors.New("called outside an HTTP context")

// callHandler returns the Handler a foreign call runs under.
func callHandler(call *pluginhost.ForeignCall) (*Handler, error) {
	h, ok := call.Attachment.(*Handler)
	if !ok {
		return nil, errors.New("plugin is not attached to a pipeline")
	}
	return h, nil
}

// callExchange returns the exchange a foreign call acts on.
func callExchange(call *pluginhost.ForeignCall) (*exchangeState, error) {
	if call.Stream == nil {
		return nil, errNoStream
	}
	st, ok := call.Stream.Info().Attachment.(*exchangeState)
	if !ok {
		return nil, errNoStream
	}
	return st, nil
}

// afterResponsePhases carries out what plugins asked of the host during
// the response phases, once every plugin has seen the response and before
// a byte of it is written, in a fixed order whatever the chain order:
// first what changes the body the client gets (wedge_compress_response),
// then what keeps a copy of it (wedge_cache_store). It reports false when
// the exchange was answered otherwise (a failure).
func (st *exchangeState) afterResponsePhases(resp *message.Response) bool {
	if !st.compressResponse(resp) {
		return false
	}
	st.cacheAfterResponse(resp)
	return true
}
