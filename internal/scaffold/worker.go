package scaffold

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/subject"
	"github.com/metropolis-dev/metro/templates"
)

// NodeNATSVersion is the npm nats client a Node worker depends on: v2,
// whose services API speaks the micro protocol that discovery reads.
const NodeNATSVersion = "^2.29.3"

// WorkerOptions is `metro new worker`.
type WorkerOptions struct {
	Dir    string   // the working directory; metro.yaml is found from here upward
	Name   string   // a DNS-1123 label
	Lang   string   // LangGo or LangNode; "" is LangGo
	Routes []string // ServeMux patterns; none is "GET /NAME"
	DryRun bool     // report, write nothing
	// Install runs `npm install` in a new Node worker, so that metro dev
	// can run it at once; its output goes to Stderr.
	Install bool
	Stderr  io.Writer
}

// AddWorker adds workers/NAME to the project around opts.Dir and appends
// it to metro.yaml. Everything is rendered and checked before anything is
// written; then all of it is written or none of it.
func AddWorker(ctx context.Context, opts WorkerOptions) (*Result, error) {
	if err := CheckName("worker", opts.Name); err != nil {
		return nil, err
	}
	if config.IsReservedWorkerName(opts.Name) {
		return nil, fmt.Errorf("%w: the worker name %q is metro's own (reserved: %s); pick another", ErrInvalidName, opts.Name, strings.Join(config.ReservedWorkerNames, ", "))
	}
	lang, err := checkLang(opts.Lang)
	if err != nil {
		return nil, err
	}
	routes, err := parseRoutes(defaultRoutes(opts.Routes, opts.Name))
	if err != nil {
		return nil, err
	}
	cwd := opts.Dir
	if cwd == "" {
		cwd = "."
	}
	cfgPath, err := config.Find(cwd)
	if errors.Is(err, config.ErrNotFound) {
		return nil, fmt.Errorf("no %s in %s or above: create a project with metro init NAME first", config.FileName, cwd)
	} else if err != nil {
		return nil, err
	}
	src, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", cfgPath, err)
	}
	projectDir, err := filepath.Abs(filepath.Dir(cfgPath))
	if err != nil {
		return nil, fmt.Errorf("locating the project: %w", err)
	}
	cfg, err := config.Parse(cfgPath, projectDir, src)
	if err != nil {
		return nil, fmt.Errorf("%s must be valid before a worker is added: %w", cfgPath, err)
	}
	if w, ok := cfg.Workers[opts.Name]; ok {
		return nil, fmt.Errorf("%w: worker %q is already in %s (line %d)", ErrExists, opts.Name, cfgPath, w.Line)
	}
	rel := path.Join("workers", opts.Name)
	if _, err := os.Lstat(filepath.Join(projectDir, filepath.FromSlash(rel))); err == nil {
		return nil, fmt.Errorf("%w: %s is in the way of worker %q", ErrExists, filepath.Join(filepath.Dir(cfgPath), rel), opts.Name)
	}

	project := cfg.Name
	if project == "" {
		project = filepath.Base(projectDir)
	}
	files, entry, err := renderWorker(project, lang, opts.Name, rel, routes)
	if err != nil {
		return nil, err
	}
	newYAML, err := addWorker(src, opts.Name, entry)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	files = append(files, file{rel: config.FileName, data: newYAML})

	res := &Result{DryRun: opts.DryRun, base: cwd, root: projectDir, yamlOld: src, yamlNew: newYAML}
	for _, f := range files[:len(files)-1] {
		res.Created = append(res.Created, f.rel)
	}
	res.Updated = []string{config.FileName}
	if lang == LangGo {
		if _, err := os.Stat(filepath.Join(projectDir, "go.mod")); err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("no go.mod beside %s: a Go worker builds in the project's module (metro init makes one)", config.FileName))
		}
	}
	wdir := filepath.Join(projectDir, filepath.FromSlash(rel))
	next := func(installed bool) []string {
		return workerNext(lang, relSlash(cwd, wdir), rel, installed, routes, cfg.Gateway.Listen)
	}
	if opts.DryRun {
		res.Next = next(false)
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err = writeAll(projectDir, files, map[string]bool{config.FileName: true}, func() error {
		// What metro dev will read must load: checked with the worker's
		// files in place, and undone with them if it does not.
		if _, err := config.Load(filepath.Join(projectDir, config.FileName)); err != nil {
			return fmt.Errorf("checking the new %s: %w", config.FileName, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	installed := false
	if lang == LangNode && opts.Install {
		// The worker is written either way; a failed install is a step
		// left to the user, not a failed command.
		if err := runTool(ctx, wdir, opts.Stderr, "npm", "install", "--no-audit", "--no-fund"); err != nil {
			res.Warnings = append(res.Warnings, err.Error())
		} else {
			installed = true
		}
	}
	res.Next = next(installed)
	return res, nil
}

func checkLang(lang string) (string, error) {
	if lang == "" {
		return LangGo, nil
	}
	if !slices.Contains(Langs, lang) {
		return "", fmt.Errorf("%w %q: want one of %s", ErrUnknownLang, lang, strings.Join(Langs, ", "))
	}
	return lang, nil
}

func defaultRoutes(routes []string, name string) []string {
	if len(routes) == 0 {
		return []string{"GET /" + name}
	}
	return routes
}

// workerData is what the worker templates see.
type workerData struct {
	Project         string // the project's name, which prefixes image names
	Name            string
	Dir             string // the worker's directory relative to the project: "workers/NAME"
	Routes          []route
	NotFoundPath    string // a path no route matches, "" if none was found
	NotFoundSubject string // NotFoundPath as a GET subject
	GoMinor         string
	NodeNATSVersion string
}

// renderWorker renders a worker of lang into files under dir, and the
// metro.yaml entry that runs it.
func renderWorker(project, lang, name, dir string, routes []route) ([]file, []kv, error) {
	data := workerData{Project: project, Name: name, Dir: dir, Routes: routes, NotFoundPath: unmatchedPath(routes), GoMinor: goMinor(), NodeNATSVersion: NodeNATSVersion}
	if data.NotFoundPath != "" {
		data.NotFoundSubject, _ = subject.FromPath("", http.MethodGet, data.NotFoundPath)
	}
	var files []file
	var err error
	var entry []kv
	switch lang {
	case LangGo:
		files, err = render(templates.Go, "go", dir, data)
		entry = []kv{{"path", scalar("./" + dir)}}
	case LangNode:
		files, err = render(templates.Node, "node", dir, data)
		entry = []kv{
			{"run", scalar("node index.js")},
			{"dir", scalar("./" + dir)},
			{"watch", flowList("**/*.js")},
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return files, entry, nil
}

func goMinor() string {
	parts := strings.SplitN(GoVersion, ".", 3)
	return parts[0] + "." + parts[1]
}

func workerNext(lang, cdDir, rel string, installed bool, routes []route, listen string) []string {
	var next []string
	switch {
	case lang == LangNode && installed:
		next = append(next, fmt.Sprintf("(cd %s && npm test)", cdDir))
	case lang == LangNode:
		next = append(next, fmt.Sprintf("(cd %s && npm install && npm test)", cdDir))
	default:
		next = append(next, "go test ./"+rel+"/...")
	}
	next = append(next, "metro dev")
	for _, r := range routes {
		next = append(next, curl(listen, r))
	}
	return next
}

func curl(listen string, r route) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" || port == "0" {
		host, port = "", "8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	host = net.JoinHostPort(host, port)
	c := "curl"
	if r.SampleMethod != "GET" {
		c += " -X " + r.SampleMethod
	}
	return fmt.Sprintf("%s http://%s%s", c, host, r.SamplePath)
}

// unmatchedPath finds a path that none of routes matches, for a test that
// an unknown path is not answered.
func unmatchedPath(routes []route) string {
	mux := http.NewServeMux()
	for _, r := range routes {
		mux.HandleFunc(r.Pattern, func(http.ResponseWriter, *http.Request) {})
	}
	for _, p := range []string{"/no-such-route", "/no-such-route/x/y/z"} {
		req, err := http.NewRequest(http.MethodGet, p, nil)
		if err != nil {
			continue
		}
		if _, pattern := mux.Handler(req); pattern == "" {
			return p
		}
	}
	return ""
}
