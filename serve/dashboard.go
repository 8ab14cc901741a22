package serve

import "net/http"

// addDashboard registers the dashboard and its JSON API.
func addDashboard(mux *http.ServeMux, c Config) {
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("socktab serve: metrics at /metrics\n"))
	})
}
