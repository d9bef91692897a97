package policy

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"golang.org/x/time/rate"
)

// Defaults of KeySetOptions.
const (
	// DefaultKeyRefresh is how often a JWKS URL is fetched again, so that a
	// key the issuer withdrew stops being accepted.
	DefaultKeyRefresh = 10 * time.Minute
	// DefaultUnknownKIDRefresh spaces the fetches that a token signed with
	// an unknown kid causes: a stream of forged kids must not turn the
	// gateway into a client flooding the issuer.
	DefaultUnknownKIDRefresh = 5 * time.Second
	// DefaultFileCheck is how often a JWKS file is checked for a change.
	DefaultFileCheck = time.Second
	// maxJWKSBytes bounds a JWKS document; real ones are a few KiB.
	maxJWKSBytes = 1 << 20
	fetchTimeout = 10 * time.Second
)

// ErrUnknownKey is returned for a kid the key set does not hold, even
// after a refresh.
var ErrUnknownKey = errors.New("no key in the JWKS has this kid")

// KeySetOptions tune a KeySet; zero values take the defaults above.
type KeySetOptions struct {
	Client            *http.Client
	Refresh           time.Duration
	UnknownKIDRefresh time.Duration
	FileCheck         time.Duration
	Logger            *slog.Logger
}

// KeySet is the public keys of a JWKS (RFC 7517), from a URL or a file,
// kept in memory. A URL is fetched again every Refresh and when a token
// names a kid the set lacks (at most once per UnknownKIDRefresh); a fetch
// that fails leaves the keys already held in use, so tokens keep being
// verified while the issuer is down. A file is read again when its size or
// modification time changes.
type KeySet struct {
	src     string
	file    bool
	opts    KeySetOptions
	keys    atomic.Pointer[keyMap]
	fetchMu sync.Mutex // one fetch at a time
	unknown *rate.Limiter
	stamp   fileStamp // guarded by fetchMu
	log     *slog.Logger
}

type keyMap map[string]crypto.PublicKey // by kid; "" for a key without one

type fileStamp struct {
	size int64
	mod  time.Time
}

// CheckJWKSSource reports whether src can name a JWKS: an http(s) URL
// with a host, or else a file path (whose content CheckJWKSFile checks).
func CheckJWKSSource(src string) error {
	if src == "" {
		return errors.New("is required: a JWKS URL (https://issuer/.well-known/jwks.json) or a file path")
	}
	if isURL(src) {
		u, err := url.Parse(src)
		if err != nil {
			return fmt.Errorf("%q is not a URL: %w", src, err)
		}
		if u.Host == "" {
			return fmt.Errorf("%q has no host", src)
		}
		return nil
	}
	if strings.Contains(src, "://") {
		return fmt.Errorf("%q: a JWKS URL must be http:// or https://", src)
	}
	return nil
}

// CheckJWKSFile reports whether src, when it is a file path (relative to
// dir), names a readable JWKS with at least one usable key.
func CheckJWKSFile(src, dir string) error {
	if err := CheckJWKSSource(src); err != nil || isURL(src) {
		return err
	}
	_, err := readKeyFile(resolve(src, dir))
	return err
}

func isURL(src string) bool {
	return strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://")
}

func resolve(p, dir string) string {
	if dir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// NewKeySet returns the key set at src, a URL or a file path (relative to
// dir). A file is read now, and must hold at least one usable key; a URL
// is fetched by Run, or by the first lookup.
func NewKeySet(src, dir string, opts KeySetOptions) (*KeySet, error) {
	if err := CheckJWKSSource(src); err != nil {
		return nil, err
	}
	if opts.Client == nil {
		// A transport of its own, whose idle connections Run closes when
		// it ends: a replaced key set leaves no connection behind.
		opts.Client = &http.Client{Timeout: fetchTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	opts.Refresh = or(opts.Refresh, DefaultKeyRefresh)
	opts.UnknownKIDRefresh = or(opts.UnknownKIDRefresh, DefaultUnknownKIDRefresh)
	opts.FileCheck = or(opts.FileCheck, DefaultFileCheck)
	k := &KeySet{
		src:     src,
		file:    !isURL(src),
		opts:    opts,
		unknown: rate.NewLimiter(rate.Every(opts.UnknownKIDRefresh), 1),
		log:     opts.Logger,
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	empty := keyMap{}
	k.keys.Store(&empty)
	if k.file {
		k.src = resolve(src, dir)
		if err := k.Refresh(context.Background()); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func or(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// Key returns the public key for kid. A kid the set lacks causes one
// refresh, unless one happened within UnknownKIDRefresh.
func (k *KeySet) Key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	if key, ok := k.lookup(kid); ok {
		return key, nil
	}
	if !k.unknown.Allow() {
		return nil, ErrUnknownKey
	}
	if err := k.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("%w (refreshing the JWKS failed: %w)", ErrUnknownKey, err)
	}
	if key, ok := k.lookup(kid); ok {
		return key, nil
	}
	return nil, ErrUnknownKey
}

func (k *KeySet) lookup(kid string) (crypto.PublicKey, bool) {
	m := *k.keys.Load()
	if key, ok := m[kid]; ok {
		return key, true
	}
	if kid == "" && len(m) == 1 {
		// A token without a kid is verified by the only key there is.
		for _, key := range m {
			return key, true
		}
	}
	return nil, false
}

// Len is the number of keys held.
func (k *KeySet) Len() int { return len(*k.keys.Load()) }

// Refresh reads the set again; on failure the keys held stay in use.
func (k *KeySet) Refresh(ctx context.Context) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	var (
		m   keyMap
		err error
	)
	if k.file {
		var st fileStamp
		st, err = stat(k.src)
		if err == nil {
			m, err = readKeyFile(k.src)
		}
		if err == nil {
			k.stamp = st
		}
	} else {
		m, err = k.fetch(ctx)
	}
	if err != nil {
		return err
	}
	k.keys.Store(&m)
	return nil
}

func (k *KeySet) fetch(ctx context.Context) (keyMap, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.src, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS %s: %w", k.src, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching JWKS %s: status %s", k.src, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS %s: %w", k.src, err)
	}
	m, err := parseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("JWKS from %s: %w", k.src, err)
	}
	return m, nil
}

func readKeyFile(path string) (keyMap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading JWKS file: %w", err)
	}
	m, err := parseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("JWKS file %s: %w", path, err)
	}
	return m, nil
}

func stat(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, fmt.Errorf("checking JWKS file: %w", err)
	}
	return fileStamp{size: fi.Size(), mod: fi.ModTime()}, nil
}

// ParseKeys reads a JWKS document into its public signing keys by kid.
// Symmetric keys and keys meant for encryption are left out: a token
// verified with a shared secret proves nothing about who signed it.
func parseKeys(data []byte) (keyMap, error) {
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxJWKSBytes)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("not a JWKS: %w", err)
	}
	m := keyMap{}
	var errs []error
	for i, km := range set.Keys {
		if km.USE != "" && km.USE != jwkset.UseSig || km.KTY == jwkset.KtyOct {
			continue
		}
		j, err := jwkset.NewJWKFromMarshal(km, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("key %d (kid %q): %w", i, km.KID, err))
			continue
		}
		pub, ok := publicKey(j.Key())
		if !ok {
			continue
		}
		m[km.KID] = pub
	}
	if len(m) == 0 {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return nil, errors.New("holds no public signing key (RSA, EC or OKP)")
	}
	return m, nil
}

func publicKey(k any) (crypto.PublicKey, bool) {
	if p, ok := k.(interface{ Public() crypto.PublicKey }); ok {
		return p.Public(), true
	}
	switch k.(type) {
	case nil, []byte:
		return nil, false
	}
	return k, true
}

// Run keeps the set fresh until ctx ends: a URL is fetched now and every
// Refresh, a file is checked every FileCheck.
func (k *KeySet) Run(ctx context.Context) {
	defer k.opts.Client.CloseIdleConnections()
	every := k.opts.Refresh
	if k.file {
		every = k.opts.FileCheck
	} else if err := k.Refresh(ctx); err != nil && ctx.Err() == nil {
		k.log.Warn("JWKS not fetched; tokens fail until it is", "jwks", k.src, "error", err)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if k.file {
			st, err := stat(k.src)
			k.fetchMu.Lock()
			same := err == nil && st == k.stamp
			k.fetchMu.Unlock()
			if same || err != nil {
				continue
			}
		}
		if err := k.Refresh(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("JWKS refresh failed; keeping the keys held", "jwks", k.src, "error", err)
		} else if err == nil {
			k.log.Debug("JWKS refreshed", "jwks", k.src, "keys", k.Len())
		}
	}
}
