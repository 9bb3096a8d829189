package memory

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilhq/vigil"
)

// KeySize is the size of a profile key in bytes: AES-256.
const KeySize = 32

// ErrDecrypt is wrapped by the error of a profile read that cannot open the
// stored profile: it was sealed under a key that is not configured (a wrong
// or lost memory.key), or its bytes were altered, or it was copied from
// another user or tenant. The data is not returned in any of these cases.
var ErrDecrypt = errors.New("memory: cannot decrypt profile")

// Sealed profile layout: version (1 byte) | key id (4 bytes) | nonce (12
// bytes) | AES-GCM ciphertext and tag. The key id lets a read name the key
// a profile needs; it is a hash of the key and reveals nothing of it.
const (
	sealVersion = 1
	keyIDLen    = 4
	nonceLen    = 12
	sealHeader  = 1 + keyIDLen + nonceLen
)

// newSealKey prepares key for sealing and opening.
func newSealKey(key []byte) (sealKey, error) {
	if len(key) != KeySize {
		return sealKey{}, fmt.Errorf("must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return sealKey{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealKey{}, err
	}
	return sealKey{id: KeyID(key), aead: aead}, nil
}

// KeyID returns a short public name of key: 8 hex digits of a SHA-256 of
// it, for logs and errors ("sealed under key 1a2b3c4d"). Two keys have the
// same id only by rare accident; the key cannot be recovered from it.
func KeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("vigil memory key id\x00"), key...))
	return hex.EncodeToString(sum[:keyIDLen])
}

// additionalData binds a sealed profile to its owner: the same bytes stored
// as another user's profile fail authentication. Ids cannot contain NUL.
func additionalData(tenant, user string) []byte {
	return []byte("vigil/memory/profile/v1\x00" + tenant + "\x00" + user)
}

// seal encrypts the profile plain of (tenant, user) under the current key
// with a fresh random nonce.
func (s *Service) seal(tenant, user string, plain []byte) ([]byte, error) {
	k := s.keys[0]
	id, _ := hex.DecodeString(k.id)
	out := make([]byte, sealHeader, sealHeader+len(plain)+k.aead.Overhead())
	out[0] = sealVersion
	copy(out[1:], id)
	if _, err := rand.Read(out[1+keyIDLen : sealHeader]); err != nil {
		return nil, fmt.Errorf("memory: seal profile: %w", err)
	}
	return k.aead.Seal(out, out[1+keyIDLen:sealHeader], plain, additionalData(tenant, user)), nil
}

// open decrypts a sealed profile of (tenant, user). Its errors wrap
// ErrDecrypt and say why the profile does not open.
func (s *Service) open(tenant, user string, sealed []byte) ([]byte, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("memory: profile of user %s in tenant %s: %s: %w", user, tenant, fmt.Sprintf(format, args...), ErrDecrypt)
	}
	if len(sealed) < sealHeader || sealed[0] != sealVersion {
		return nil, fail("not a sealed profile (version %d, %d bytes)", firstByte(sealed), len(sealed))
	}
	id := hex.EncodeToString(sealed[1 : 1+keyIDLen])
	for _, k := range s.keys {
		if k.id != id {
			continue
		}
		plain, err := k.aead.Open(nil, sealed[1+keyIDLen:sealHeader], sealed[sealHeader:], additionalData(tenant, user))
		if err != nil {
			return nil, fail("authentication under key %s failed: the data was altered or belongs to another user", id)
		}
		return plain, nil
	}
	have := make([]string, len(s.keys))
	for i, k := range s.keys {
		have[i] = k.id
	}
	return nil, fail("sealed under key %s, but the configured memory.key is %s; is memory.key the one the profile was written with?", id, strings.Join(have, ", "))
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// NewKey returns a fresh random profile key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k) // never fails (crypto/rand aborts the program instead)
	return k
}

// ParseKey decodes a profile key from base64 (standard or URL alphabet,
// padded or not), as configuration gives it. Errors are vigil.Invalid and
// name the field memory.key; they never echo the value.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != KeySize {
				return nil, vigil.FieldError("memory.key", "must decode to %d bytes, got %d", KeySize, len(k))
			}
			return k, nil
		}
	}
	return nil, vigil.FieldError("memory.key", "is not base64 (generate one with: openssl rand -base64 32)")
}

// KeyFile returns the profile key kept in the file at path, as base64 text.
// If there is no such file it creates one with a new random key, readable
// by its owner only; concurrent callers all end up with the same key. It is
// for the embedded store, where the key can live next to the data file.
// (Keep a copy elsewhere: without it, profiles cannot be read.)
func KeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := createKeyFile(path); err != nil {
			return nil, err
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("memory: key file: %w", err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("memory: key file %s: %w", path, err)
	}
	return k, nil
}

// createKeyFile writes a new key to a temporary file and links it to path,
// so that path appears whole or not at all, and never replaces a key file
// another process made first.
func createKeyFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".memory-key-*")
	if err != nil {
		return fmt.Errorf("memory: key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	text := base64.StdEncoding.EncodeToString(NewKey()) + "\n"
	_, err = tmp.WriteString(text)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("memory: key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("memory: key file: %w", err)
	}
	return nil
}
