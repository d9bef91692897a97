package natsauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/nats-io/nkeys"
)

// Keys holds an nkey seed per identity ID.
type Keys map[string]string

// Fill makes a seed for every user that has none, and reports whether it
// made any.
func (k Keys) Fill(users []User) (bool, error) {
	made := false
	for _, u := range users {
		if _, ok := k[u.ID]; ok {
			continue
		}
		kp, err := nkeys.CreateUser()
		if err != nil {
			return made, fmt.Errorf("making an nkey for %s: %w", u.ID, err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return made, fmt.Errorf("making an nkey for %s: %w", u.ID, err)
		}
		k[u.ID] = string(seed)
		made = true
	}
	return made, nil
}

// Public is the public key of id's seed, which the server admits.
func (k Keys) Public(id string) (string, error) {
	seed, ok := k[id]
	if !ok {
		return "", fmt.Errorf("no nkey for %s", id)
	}
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return "", fmt.Errorf("nkey of %s: %w", id, err)
	}
	return kp.PublicKey()
}

// SeedFile is where WriteSeeds puts id's seed under dir.
func SeedFile(dir, id string) string { return filepath.Join(dir, id+".nk") }

// WriteSeeds writes each seed to its own file under dir, readable by the
// owner only.
func (k Keys) WriteSeeds(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing NATS credentials: %w", err)
	}
	for _, id := range k.ids() {
		if err := writePrivate(SeedFile(dir, id), []byte(k[id]+"\n")); err != nil {
			return fmt.Errorf("writing NATS credentials: %w", err)
		}
	}
	return nil
}

func (k Keys) ids() []string {
	ids := make([]string, 0, len(k))
	for id := range k {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// LoadKeys reads a file that SaveKeys wrote; a missing file is no keys.
func LoadKeys(path string) (Keys, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Keys{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading NATS keys: %w", err)
	}
	k := Keys{}
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("reading NATS keys %s: %w", path, err)
	}
	for id, seed := range k {
		if _, err := nkeys.FromSeed([]byte(seed)); err != nil {
			return nil, fmt.Errorf("reading NATS keys %s: %s: %w", path, id, err)
		}
	}
	return k, nil
}

// SaveKeys writes k to path, readable by the owner only.
func SaveKeys(path string, k Keys) error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return fmt.Errorf("writing NATS keys: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("writing NATS keys: %w", err)
	}
	if err := writePrivate(path, append(b, '\n')); err != nil {
		return fmt.Errorf("writing NATS keys: %w", err)
	}
	return nil
}

// writePrivate writes a file with mode 0600, also when it exists with a
// wider one.
func writePrivate(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
