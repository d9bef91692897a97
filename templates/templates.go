// Package templates holds the files metro renders: projects, workers and Kubernetes manifests.
package templates

import "embed"

// Project is the skeleton of `metro init`: go.mod, metro.yaml, README,
// .gitignore and the gateway's Dockerfile. Files end in .tmpl so that the
// Go tool never takes a template for part of this module.
//
//go:embed project
var Project embed.FS

// Go is a Go worker for `metro new worker --lang go`.
//
//go:embed go
var Go embed.FS

// Node is a Node.js worker for `metro new worker --lang node`.
//
//go:embed node
var Node embed.FS
