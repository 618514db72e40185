package pluginhost

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wedgeproxy/wedge/server/pluginhost/internal/abi"
)

// Properties (spec "Properties"; Envoy's attributes,
// envoyproxy.io/docs/envoy/latest/intro/arch_overview/advanced/attributes).
// A path arrives as its segments joined by NUL bytes, as the SDKs send it;
// a dotted path is accepted too. Values are serialized as Envoy does:
// strings as their bytes, integers as 8 bytes little-endian, booleans as one
// byte, timestamps and durations as int64 nanoseconds, maps as serialized
// header maps.
type propID int

const (
	propNone propID = iota
	propPluginName
	propPluginRootID
	propPluginVMID
	propRequestPath
	propRequestURLPath
	propRequestHost
	propRequestScheme
	propRequestMethod
	propRequestHeaders
	propRequestReferer
	propRequestUserAgent
	propRequestID
	propRequestProtocol
	propRequestQuery
	propRequestTime
	propRequestDuration
	propRequestSize
	propResponseCode
	propResponseCodeDetails
	propResponseHeaders
	propResponseSize
	propResponseFlags
	propSourceAddress
	propSourcePort
	propDestinationAddress
	propDestinationPort
	propConnectionID
	propConnectionMTLS
	propConnectionTLSVersion
	propConnectionSNI
	propUpstreamAddress
	propUpstreamPort
	propWedgeUpstream
	propWedgeStatic
	propWedgeStaticPath
)

var propNames = map[string]propID{
	"plugin_name":                      propPluginName,
	"plugin_root_id":                   propPluginRootID,
	"plugin_vm_id":                     propPluginVMID,
	"request.path":                     propRequestPath,
	"request.url_path":                 propRequestURLPath,
	"request.host":                     propRequestHost,
	"request.scheme":                   propRequestScheme,
	"request.method":                   propRequestMethod,
	"request.headers":                  propRequestHeaders,
	"request.referer":                  propRequestReferer,
	"request.useragent":                propRequestUserAgent,
	"request.id":                       propRequestID,
	"request.protocol":                 propRequestProtocol,
	"request.query":                    propRequestQuery,
	"request.time":                     propRequestTime,
	"request.duration":                 propRequestDuration,
	"request.size":                     propRequestSize,
	"response.code":                    propResponseCode,
	"response.code_details":            propResponseCodeDetails,
	"response.headers":                 propResponseHeaders,
	"response.size":                    propResponseSize,
	"response.flags":                   propResponseFlags,
	"source.address":                   propSourceAddress,
	"source.port":                      propSourcePort,
	"destination.address":              propDestinationAddress,
	"destination.port":                 propDestinationPort,
	"connection.id":                    propConnectionID,
	"connection.mtls":                  propConnectionMTLS,
	"connection.tls_version":           propConnectionTLSVersion,
	"connection.requested_server_name": propConnectionSNI,
	"upstream.address":                 propUpstreamAddress,
	"upstream.port":                    propUpstreamPort,
	"wedge.upstream":                   propWedgeUpstream,
	"wedge.static":                     propWedgeStatic,
	"wedge.static_path":                propWedgeStaticPath,
}

// Bounds on the properties a stream's plugins may set for each other.
const (
	maxCustomProps     = 256
	maxCustomPropBytes = 64 << 10
)

// normPath turns a NUL-separated property path into the dotted form, in
// buf when it fits.
func normPath(path []byte, buf []byte) []byte {
	if bytes.IndexByte(path, 0) < 0 {
		return path
	}
	out := append(buf[:0], path...)
	for i, c := range out {
		if c == 0 {
			out[i] = '.'
		}
	}
	return out
}

func hGetProperty(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	raw, ok := v.read(u32(stack[0]), u32(stack[1]))
	rp, rs := u32(stack[2]), u32(stack[3])
	if !ok || !v.outPtrs(rp, rs) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	var buf [128]byte
	path := normPath(raw, buf[:])
	ret(stack, v.getProperty(path, rp, rs))
}

func hSetProperty(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	raw, ok1 := v.read(u32(stack[0]), u32(stack[1]))
	val, ok2 := v.read(u32(stack[2]), u32(stack[3]))
	if !ok1 || !ok2 {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	var buf [128]byte
	path := normPath(raw, buf[:])
	ret(stack, v.setProperty(path, val))
}

// getProperty copies the value at path into the guest.
func (v *vm) getProperty(path []byte, rp, rs uint32) abi.Status {
	id := propNames[string(path)]
	p := v.p
	switch id {
	case propPluginName:
		return okStatus(v.copyOutString(p.name, rp, rs))
	case propPluginRootID:
		return okStatus(v.copyOutString(p.spec.RootID, rp, rs))
	case propPluginVMID:
		return okStatus(v.copyOutString(p.spec.VMID, rp, rs))
	}
	sp := v.streamFor()
	if sp == nil {
		return abi.StatusNotFound
	}
	s := sp.s
	str := func(x string) abi.Status { return okStatus(v.copyOutString(x, rp, rs)) }
	num := func(x int64) abi.Status { return okStatus(v.copyOutU64(uint64(x), rp, rs)) }
	req, resp := s.req, s.resp
	if id == propNone {
		switch {
		case req != nil && bytes.HasPrefix(path, []byte("request.headers.")):
			if val, ok := (headerMap{req: req}).get(path[len("request.headers."):]); ok {
				return str(val)
			}
		case resp != nil && bytes.HasPrefix(path, []byte("response.headers.")):
			if val, ok := (headerMap{resp: resp}).get(path[len("response.headers."):]); ok {
				return str(val)
			}
		default:
			if val, ok := s.props[string(path)]; ok {
				return okStatus(v.copyOut(val, rp, rs))
			}
		}
		return abi.StatusNotFound
	}
	switch id {
	case propRequestPath, propRequestURLPath, propRequestHost, propRequestScheme, propRequestMethod,
		propRequestHeaders, propRequestReferer, propRequestUserAgent, propRequestProtocol, propRequestQuery:
		if req == nil {
			return abi.StatusNotFound
		}
	case propResponseCode, propResponseHeaders:
		if resp == nil {
			return abi.StatusNotFound
		}
	}
	switch id {
	case propRequestPath:
		return str(req.Target)
	case propRequestURLPath:
		return str(req.Path())
	case propRequestHost:
		return str(req.Host)
	case propRequestScheme:
		return str((headerMap{req: req}).pseudo(3))
	case propRequestMethod:
		return str(req.Method)
	case propRequestHeaders:
		return v.copyOutMap(headerMap{req: req}, rp, rs)
	case propRequestReferer:
		return str(req.Header.Get("Referer"))
	case propRequestUserAgent:
		return str(req.Header.Get("User-Agent"))
	case propRequestID:
		if req != nil {
			if id, ok := req.Header.Lookup("X-Request-Id"); ok {
				return str(id)
			}
		}
		return str(s.requestID())
	case propRequestProtocol:
		return str(envoyProtocol(req.Proto))
	case propRequestQuery:
		_, q, _ := strings.Cut(req.Target, "?")
		return str(q)
	case propRequestTime:
		return num(s.info.Start.UnixNano())
	case propRequestDuration:
		return num(int64(time.Since(s.info.Start)))
	case propRequestSize:
		switch {
		case s.reqBody != nil:
			return num(s.reqBody.Len())
		case req != nil && req.ContentLength >= 0:
			return num(req.ContentLength)
		}
	case propResponseCode:
		return num(int64(resp.Status))
	case propResponseCodeDetails:
		if s.local != nil {
			return str(s.local.Details)
		}
		if resp != nil {
			return str("via_upstream")
		}
	case propResponseHeaders:
		return v.copyOutMap(headerMap{resp: resp}, rp, rs)
	case propResponseSize:
		switch {
		case s.respBody != nil:
			return num(s.respBody.Len())
		case resp != nil && resp.ContentLength >= 0:
			return num(resp.ContentLength)
		}
	case propResponseFlags:
		if resp != nil {
			return num(0)
		}
	case propSourceAddress:
		if s.info.Source.IsValid() {
			return str(s.info.Source.String())
		}
	case propSourcePort:
		if s.info.Source.IsValid() {
			return num(int64(s.info.Source.Port()))
		}
	case propDestinationAddress:
		if s.info.Destination.IsValid() {
			return str(s.info.Destination.String())
		}
	case propDestinationPort:
		if s.info.Destination.IsValid() {
			return num(int64(s.info.Destination.Port()))
		}
	case propConnectionID:
		return num(int64(s.info.ConnectionID))
	case propConnectionMTLS:
		return okStatus(v.copyOut([]byte{0}, rp, rs))
	case propConnectionTLSVersion:
		if s.info.TLSVersion != "" {
			return str(s.info.TLSVersion)
		}
	case propConnectionSNI:
		if s.info.TLSVersion != "" {
			return str(s.info.SNI)
		}
	case propUpstreamAddress:
		if s.upAddr != "" {
			return str(s.upAddr)
		}
	case propUpstreamPort:
		if ap, err := netip.ParseAddrPort(s.upAddr); err == nil {
			return num(int64(ap.Port()))
		}
	case propWedgeUpstream:
		return str(s.upstream)
	case propWedgeStatic:
		return str(s.static)
	case propWedgeStaticPath:
		return str(s.staticP)
	}
	return abi.StatusNotFound
}

// copyOutMap serializes a header map into the guest (request.headers,
// response.headers).
func (v *vm) copyOutMap(hm headerMap, rp, rs uint32) abi.Status {
	n, size := hm.size()
	if uint64(size) > v.lim.limit {
		return abi.StatusInvalidMemoryAccess
	}
	ptr, dst, ok := v.allocView(uint32(size))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	hm.serialize(dst, n)
	return okStatus(v.returnPtrSize(rp, rs, ptr, uint32(size)))
}

// setProperty sets wedge.upstream, wedge.static, or a property of the
// stream's own that later plugins of the chain read back (as Envoy's
// filter state lets them). Envoy's attributes are read-only.
func (v *vm) setProperty(path, val []byte) abi.Status {
	sp := v.streamFor()
	id := propNames[string(path)]
	switch {
	case id != propNone && id != propWedgeUpstream && id != propWedgeStatic && id != propWedgeStaticPath:
		return abi.StatusBadArgument
	case sp == nil:
		return abi.StatusNotFound
	}
	s := sp.s
	switch id {
	case propWedgeUpstream:
		s.upstream = string(val)
		return abi.StatusOK
	case propWedgeStatic:
		s.static = string(val)
		return abi.StatusOK
	case propWedgeStaticPath:
		s.staticP = string(val)
		return abi.StatusOK
	}
	if len(path) == 0 || len(val) > maxCustomPropBytes ||
		bytes.HasPrefix(path, []byte("request.")) || bytes.HasPrefix(path, []byte("response.")) {
		return abi.StatusBadArgument
	}
	if s.props == nil {
		s.props = make(map[string][]byte)
	}
	if _, exists := s.props[string(path)]; !exists && len(s.props) >= maxCustomProps {
		return abi.StatusBadArgument
	}
	s.props[string(path)] = append([]byte(nil), val...)
	return abi.StatusOK
}

// envoyProtocol spells a protocol as Envoy's request.protocol does.
func envoyProtocol(proto string) string {
	switch proto {
	case "HTTP/2.0":
		return "HTTP/2"
	case "HTTP/3.0":
		return "HTTP/3"
	}
	return proto
}
