package openapicheck

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The checker holds answers to schemas/openapi.yaml: an error body without
// "error", a status the operation does not list, and a status answer
// missing required fields all fail; a conforming answer passes.
func TestCheckerFailsWhatBreaksTheContract(t *testing.T) {
	chk, err := Load("../../schemas/openapi.yaml")
	require.NoError(t, err)
	answer := func(status int, body string) error {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, body)
		}))
		defer srv.Close()
		req, _ := http.NewRequest("GET", srv.URL+"/v1/missions/m-1", nil)
		req.Header.Set("Authorization", "Bearer k")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		return chk.Check(req, nil, resp)
	}
	require.NoError(t, answer(404, `{"error":"no mission m-1"}`))
	require.Error(t, answer(404, `{"err":"no mission m-1"}`))
	require.Error(t, answer(418, `{"error":"teapot"}`))
	require.Error(t, answer(200, `{"missionId":"m-1"}`))
	ok := `{"missionId":"m-1","site":"a","priority":1,"state":"QUEUED","nodesDone":0,"nodesTotal":3,"paused":false,"startedAt":"2026-12-06T01:00:00Z","updatedAt":"2026-12-06T01:00:00Z"}`
	require.NoError(t, answer(200, ok))
	require.Error(t, answer(200, strings.Replace(ok, "QUEUED", "FLYING", 1)))
}
