package serve

import (
	"embed"
	"io/fs"
	"net/http"
)

// assets are the dashboard's page, script and style, compiled into the
// binary: the page loads nothing from elsewhere, so it works offline.
//
//go:embed assets
var assets embed.FS

// addDashboard registers the dashboard and its read-only JSON API.
func addDashboard(mux *http.ServeMux, c Config) {
	a := &api{target: c.Target, sockOpts: c.Metrics.SockOpts, cli: c.CLI}
	mux.HandleFunc("/api/sockets", a.sockets)
	mux.HandleFunc("/api/exposure", a.exposureMap)
	mux.HandleFunc("/api/audit", a.audit)
	mux.HandleFunc("/api/ports", a.ports)
	mux.HandleFunc("/api/who", a.who)
	mux.HandleFunc("/api/bind", a.bind)
	sub, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(sub)
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The page may load only its own files.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		files.ServeHTTP(w, r)
	}))
}
