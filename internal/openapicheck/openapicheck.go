// Package openapicheck checks HTTP exchanges against an OpenAPI 3.1
// document (libopenapi-validator): tests wrap their HTTP client's transport
// with it so every request and response of the REST ingress is held to
// schemas/openapi.yaml. It is for tests; nothing in the product imports it.
package openapicheck

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi/datamodel"
)

// Checker validates exchanges against one document.
type Checker struct {
	v validator.Validator
	// one validation at a time: the validator's caches are shared
	mu sync.Mutex
}

// Load reads the OpenAPI document at path; relative $refs (such as
// ./mission.schema.json) resolve from its directory. The document itself
// must be valid OpenAPI.
func Load(path string) (*Checker, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	doc, err := libopenapi.NewDocumentWithConfiguration(raw, &datamodel.DocumentConfiguration{
		BasePath: abs, AllowFileReferences: true, SpecFilePath: filepath.Base(path),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %v", path, errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		return nil, fmt.Errorf("%s is not valid OpenAPI: %s", path, describe(verrs))
	}
	return &Checker{v: v}, nil
}

// Check validates one request and its response. Bodies are read and put
// back, so both can still be used. A request the server refused as bad
// (400, 401, 404, 413) may break the contract, and often does on purpose in
// tests: then only the response is held to it.
func (c *Checker) Check(req *http.Request, reqBody []byte, resp *http.Response) error {
	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	r2 := req.Clone(req.Context())
	r2.Body = io.NopCloser(bytes.NewReader(reqBody))
	resp2 := *resp
	resp2.Body = io.NopCloser(bytes.NewReader(respBody))
	resp2.Request = r2
	c.mu.Lock()
	var ok bool
	var verrs []*verrors.ValidationError
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusRequestEntityTooLarge:
		ok, verrs = c.v.ValidateHttpResponse(r2, &resp2)
	default:
		ok, verrs = c.v.ValidateHttpRequestResponse(r2, &resp2)
	}
	c.mu.Unlock()
	if !ok && resp.StatusCode == http.StatusNotFound {
		// A path the document does not have (an unknown action) can only
		// be answered 404; there is nothing to hold the answer to.
		verrs = slices.DeleteFunc(verrs, func(e *verrors.ValidationError) bool { return e.ValidationType == "path" })
		ok = len(verrs) == 0
	}
	if !ok {
		return fmt.Errorf("%s %s → %d %s: %s", req.Method, req.URL.RequestURI(), resp.StatusCode, respBody, describe(verrs))
	}
	return nil
}

// Transport is an http.RoundTripper that checks every exchange and sends
// each failure to Fail (a test's t.Errorf).
type Transport struct {
	Checker *Checker
	Base    http.RoundTripper
	Fail    func(format string, args ...any)
}

// RoundTrip sends req through Base, then checks the exchange.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if err := t.Checker.Check(req, body, resp); err != nil {
		t.Fail("openapi: %v", err)
	}
	return resp, nil
}

func describe[E interface{ Error() string }](errs []E) string {
	var b strings.Builder
	for i, e := range errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}
