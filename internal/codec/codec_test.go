package codec

import (
	"bytes"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// Payloads go out encrypted and come back as they were; other keys,
// tampering and plain payloads are handled as the package says.
func TestEncryptDecrypt(t *testing.T) {
	k1, _ := NewKey()
	k2, _ := NewKey()
	key1, err := ParseKey(k1)
	if err != nil {
		t.Fatal(err)
	}
	key2, _ := ParseKey(k2)
	c1, _ := New(key1)
	c2, _ := New(key2)
	dc := c1.DataConverter()
	p, err := dc.ToPayload(map[string]string{"missionId": "m-secret-0001"})
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Metadata[MetadataEncoding]) != EncodingEncrypted || bytes.Contains(p.Data, []byte("m-secret-0001")) {
		t.Fatalf("not encrypted: %v %q", p.Metadata, p.Data)
	}
	var back map[string]string
	if err := dc.FromPayload(p, &back); err != nil || back["missionId"] != "m-secret-0001" {
		t.Fatalf("round trip: %v %v", back, err)
	}
	// Another key: an error naming both key IDs.
	if _, err := c2.Decode([]*commonpb.Payload{p}); err == nil || !strings.Contains(err.Error(), c1.KeyID()) || !strings.Contains(err.Error(), c2.KeyID()) {
		t.Fatalf("decrypt with another key: %v", err)
	}
	// Tampered ciphertext fails authentication.
	bad := &commonpb.Payload{Metadata: p.Metadata, Data: append([]byte(nil), p.Data...)}
	bad.Data[len(bad.Data)-1] ^= 1
	if _, err := c1.Decode([]*commonpb.Payload{bad}); err == nil {
		t.Fatal("tampered payload decrypted")
	}
	// A plain payload (written before encryption was on) passes through.
	plain, _ := converter.GetDefaultDataConverter().ToPayload("hello")
	got, err := c1.Decode([]*commonpb.Payload{plain})
	if err != nil || got[0] != plain {
		t.Fatalf("plain payload: %v %v", got, err)
	}
	for _, s := range []string{"", "not base64!", "c2hvcnQ="} {
		if _, err := ParseKey(s); err == nil {
			t.Fatalf("key %q accepted", s)
		}
	}
}
