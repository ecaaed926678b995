package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// ArtifactServer serves a directory of OTA artifacts over HTTP, as a cloud
// storage bucket would: GET <base>/<file>, <file>.manifest.json,
// <file>.manifest.json.sig. It lists no directories.
type ArtifactServer struct {
	// BaseURL is http://127.0.0.1:<port>/.
	BaseURL string
	srv     *http.Server
}

// ServeArtifacts serves dir on 127.0.0.1:port (0 = any free port). A port
// in use is reported, not fought over. With query set it is a private
// store: a request whose query string is not exactly query (a store-wide
// presigned token, config artifacts.urlQuery) gets 403, as a bucket
// refuses a URL without its SAS.
func ServeArtifacts(dir string, port int, query string) (*ArtifactServer, error) {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("artifacts.dir %s: not a directory", dir)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, fmt.Errorf("artifact server: port %d is in use or not available (set artifacts.servePort or FLEETFLOW_ARTIFACTS_SERVE_PORT): %w", port, err)
	}
	files := http.FileServer(http.Dir(dir))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			http.NotFound(w, r)
			return
		}
		if query != "" && r.URL.RawQuery != query {
			http.Error(w, "signature required", http.StatusForbidden)
			return
		}
		files.ServeHTTP(w, r)
	})
	s := &ArtifactServer{BaseURL: "http://" + ln.Addr().String() + "/", srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "artifact server:", err)
		}
	}()
	return s, nil
}

// Stop shuts the server down.
func (s *ArtifactServer) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}
