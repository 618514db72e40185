package static

import (
	"mime"
	"path"
	"strings"
)

// builtinTypes maps the common web extensions to their media types, so that
// these never depend on the host's /etc/mime.types. Text types, JavaScript
// and JSON carry "charset=utf-8" (RFC 9110 §8.3.2; RFC 9239 for
// text/javascript). The values follow nginx's mime.types where IANA leaves
// a choice (image/x-icon).
var builtinTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".htm":         "text/html; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".json":        "application/json; charset=utf-8",
	".map":         "application/json; charset=utf-8",
	".webmanifest": "application/manifest+json; charset=utf-8",
	".txt":         "text/plain; charset=utf-8",
	".csv":         "text/csv; charset=utf-8",
	".md":          "text/markdown; charset=utf-8",
	".xml":         "text/xml; charset=utf-8",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".gif":         "image/gif",
	".webp":        "image/webp",
	".avif":        "image/avif",
	".ico":         "image/x-icon",
	".wasm":        "application/wasm",
	".woff":        "font/woff",
	".woff2":       "font/woff2",
	".pdf":         "application/pdf",
	".mp4":         "video/mp4",
	".webm":        "video/webm",
	".gz":          "application/gzip",
	".br":          "application/x-brotli",
	".zst":         "application/zstd",
}

// defaultType is the media type of a file with an unknown extension
// (nginx default_type application/octet-stream).
const defaultType = "application/octet-stream"

// contentType returns the media type for the file name: the built-in table
// first, then mime.TypeByExtension, then defaultType. "text/*" types from
// the system table are given "charset=utf-8" when they name no charset.
func contentType(name string) string {
	ext := path.Ext(name)
	if ext == "" {
		return defaultType
	}
	if t, ok := builtinTypes[ext]; ok {
		return t
	}
	lower := strings.ToLower(ext)
	if t, ok := builtinTypes[lower]; ok {
		return t
	}
	t := mime.TypeByExtension(lower)
	if t == "" {
		return defaultType
	}
	if strings.HasPrefix(t, "text/") && !strings.Contains(t, "charset") {
		t += "; charset=utf-8"
	}
	return t
}
