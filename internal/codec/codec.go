// Package codec encrypts Temporal payloads (workflow inputs and results,
// activity arguments, signals, updates, queries' answers) with AES-256-GCM
// before they leave the process, so the Temporal service and anyone who
// reads its database or histories see ciphertext only. Every client of a
// namespace must use the same key (workers, starter, the REST ingress);
// the Web UI decrypts through the codec server the workers serve
// (/codec, converter.NewPayloadCodecHTTPHandler).
//
// An encrypted payload has metadata encoding "binary/encrypted" and
// "encryption-key-id" (the first 8 bytes of the key's SHA-256, hex); its
// data is a 12-byte nonce followed by the sealed protobuf of the original
// payload. Payloads without that encoding pass through Decode unchanged,
// so histories written before encryption was turned on still replay.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Metadata of an encrypted payload.
const (
	MetadataEncoding  = "encoding"
	EncodingEncrypted = "binary/encrypted"
	MetadataKeyID     = "encryption-key-id"
)

// AESGCM is a converter.PayloadCodec with one AES-256 key.
type AESGCM struct {
	aead  cipher.AEAD
	keyID string
}

// ParseKey decodes a key as FLEETFLOW_TEMPORAL_PAYLOAD_KEY holds it:
// standard base64 of 32 random bytes (`starter temporal new-payload-key`).
func ParseKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("payload key: not base64: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("payload key: %d bytes, want 32 (AES-256)", len(key))
	}
	return key, nil
}

// NewKey returns a fresh key in the form ParseKey reads.
func NewKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// New returns the codec for a 32-byte key.
func New(key []byte) (*AESGCM, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(key)
	return &AESGCM{aead: aead, keyID: hex.EncodeToString(sum[:8])}, nil
}

// KeyID names the key in encrypted payloads' metadata.
func (c *AESGCM) KeyID() string { return c.keyID }

// Encode encrypts each payload.
func (c *AESGCM) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		nonce := make([]byte, c.aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{MetadataEncoding: []byte(EncodingEncrypted), MetadataKeyID: []byte(c.keyID)},
			Data:     c.aead.Seal(nonce, nonce, plain, nil),
		}
	}
	return out, nil
}

// Decode decrypts each encrypted payload and passes others through.
// Errors: a payload encrypted with another key (named by its key ID), or
// one that fails authentication (tampered).
func (c *AESGCM) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		if id := string(p.GetMetadata()[MetadataKeyID]); id != c.keyID {
			return nil, fmt.Errorf("decrypt payload: encrypted with key %s, this process has key %s (FLEETFLOW_TEMPORAL_PAYLOAD_KEY)", id, c.keyID)
		}
		n := c.aead.NonceSize()
		if len(p.GetData()) < n {
			return nil, fmt.Errorf("decrypt payload: %d bytes, shorter than a nonce", len(p.GetData()))
		}
		plain, err := c.aead.Open(nil, p.GetData()[:n], p.GetData()[n:], nil)
		if err != nil {
			return nil, fmt.Errorf("decrypt payload: %w", err)
		}
		var orig commonpb.Payload
		if err := proto.Unmarshal(plain, &orig); err != nil {
			return nil, fmt.Errorf("decrypt payload: %w", err)
		}
		out[i] = &orig
	}
	return out, nil
}

// DataConverter wraps the SDK's default data converter with the codec.
func (c *AESGCM) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}
