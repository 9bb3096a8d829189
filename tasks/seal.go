package tasks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// SealerKeySize is the size of the key a Sealer is made from: the memory
// key.
const SealerKeySize = 32

// sealedPrefix starts every sealed webhook secret, so that a secret stored
// before sealing was configured (plain text) can still be told apart and
// used.
const sealedPrefix = "sealed:v1:"

// Sealer keeps webhook secrets (Webhook.Secret) encrypted at rest with
// AES-256-GCM. The Manager seals every secret it is given before the Store
// sees it (Options.Sealer); the Notifier opens it just before it signs a
// POST (NotifierOptions.Sealer). A sealed secret is a string:
//
//	"sealed:v1:" base64url( key id (4 bytes) | nonce (12 bytes) | ciphertext and tag )
//
// The additional data binds it to its task id and webhook URL, so that it
// cannot be moved onto another task or pointed at another receiver. The
// AES key is derived from the memory key with HKDF-SHA256, so webhook
// secrets never share an AES key with what else the memory key protects.
// A Sealer is safe for concurrent use.
type Sealer struct {
	id   [sealKeyIDLen]byte
	aead cipher.AEAD
}

const (
	sealKeyIDLen = 4
	sealNonceLen = 12
)

// NewSealer returns a Sealer under key, which must be SealerKeySize bytes.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != SealerKeySize {
		return nil, fmt.Errorf("tasks: webhook secrets key must be %d bytes, got %d", SealerKeySize, len(key))
	}
	derived, err := hkdf.Key(sha256.New, key, nil, "vigil webhook secrets v1", SealerKeySize)
	if err != nil {
		return nil, fmt.Errorf("tasks: derive the webhook secrets key: %w", err)
	}
	block, err := aes.NewCipher(derived)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, err
	}
	s := &Sealer{aead: aead}
	sum := sha256.Sum256(append([]byte("vigil webhook key id\x00"), derived...))
	copy(s.id[:], sum[:])
	return s, nil
}

// Sealed reports whether secret is a sealed secret rather than one stored
// in plain text.
func Sealed(secret string) bool { return strings.HasPrefix(secret, sealedPrefix) }

func sealData(taskID, url string) []byte {
	return []byte("vigil/webhook/v1\x00" + taskID + "\x00" + url)
}

// Seal encrypts the secret of task taskID's webhook at url.
func (s *Sealer) Seal(taskID, url, secret string) string {
	// The AEAD draws a random nonce and puts it before the ciphertext.
	out := s.aead.Seal(s.id[:sealKeyIDLen:sealKeyIDLen], nil, []byte(secret), sealData(taskID, url))
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(out)
}

// errOpen is wrapped by every failure to open a sealed secret.
var errOpen = errors.New("cannot open the webhook's secret")

// Open decrypts a secret Seal made for task taskID's webhook at url. The
// errors say why (another key, altered data, another task or URL) and
// never show the secret.
func (s *Sealer) Open(taskID, url, sealed string) (string, error) {
	if !Sealed(sealed) {
		return "", fmt.Errorf("%w: it is not sealed", errOpen)
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed[len(sealedPrefix):])
	if err != nil || len(raw) < sealKeyIDLen+sealNonceLen {
		return "", fmt.Errorf("%w: it is malformed", errOpen)
	}
	if id := raw[:sealKeyIDLen]; string(id) != string(s.id[:]) {
		return "", fmt.Errorf("%w: it was sealed under key %s, but the configured key is %s",
			errOpen, hex.EncodeToString(id), hex.EncodeToString(s.id[:]))
	}
	plain, err := s.aead.Open(nil, nil, raw[sealKeyIDLen:], sealData(taskID, url))
	if err != nil {
		return "", fmt.Errorf("%w: authentication failed: it was altered or belongs to another task or URL", errOpen)
	}
	return string(plain), nil
}

// mergeHooks returns the webhooks given for task taskID as they are to be
// stored, with stored the task's webhooks now (nil for a new task). A
// webhook given without a secret, or with the very secret stored for its
// URL (a client that sent back what it read), keeps the stored secret;
// every other secret is new and is sealed. Stored secrets still in plain
// text (from before a key was configured) are sealed on the way. With a
// nil Sealer (no key configured) secrets are kept as given.
func (s *Sealer) mergeHooks(taskID string, given, stored []Webhook) []Webhook {
	if len(given) == 0 {
		return given
	}
	out := make([]Webhook, len(given))
	for i, h := range given {
		out[i] = h
		for _, old := range stored {
			if old.URL == h.URL && (h.Secret == "" || h.Secret == old.Secret) {
				out[i].Secret = old.Secret
				h.Secret = ""
				break
			}
		}
		if s != nil && out[i].Secret != "" && (h.Secret != "" || !Sealed(out[i].Secret)) {
			out[i].Secret = s.Seal(taskID, h.URL, out[i].Secret)
		}
	}
	return out
}
