package deploy

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// YAML joins the manifests into one multi-document stream.
func YAML(ms []Manifest) []byte {
	var b bytes.Buffer
	for i, m := range ms {
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(m.Body)
	}
	return b.Bytes()
}

// WriteYAML writes the manifests to w as one multi-document stream.
func WriteYAML(w io.Writer, ms []Manifest) error {
	if _, err := w.Write(YAML(ms)); err != nil {
		return fmt.Errorf("writing manifests: %w", err)
	}
	return nil
}

// WriteDir writes one file per manifest into dir (created if needed) and a
// kustomization.yaml listing them in apply order, so that the directory
// works with `kubectl apply -k` and as a kustomize base.
func WriteDir(dir string, ms []Manifest) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing manifests: %w", err)
	}
	var k bytes.Buffer
	k.WriteString("# Written by metro deploy --emit-yaml.\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	for _, m := range ms {
		if err := os.WriteFile(filepath.Join(dir, m.File()), m.Body, 0o644); err != nil {
			return fmt.Errorf("writing manifests: %w", err)
		}
		fmt.Fprintf(&k, "  - %s\n", m.File())
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), k.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing manifests: %w", err)
	}
	return nil
}
