package devserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/natsauth"
	"github.com/metropolis-dev/metro/internal/natsconn"
)

// RouteRow is one line of the route table: a route and who serves it.
type RouteRow struct {
	Method   string `json:"method"` // "" for every method
	Path     string `json:"path"`
	Worker   string `json:"worker"`
	Replicas int    `json:"replicas"`
	Subject  string `json:"subject"`
	// Owner is the service that runs the route's requests when more than
	// one announces it (PROTOCOL.md section 5); "" when one alone does.
	Owner string `json:"owner,omitempty"`
}

// routeRows folds service instances into one row per route and service,
// counting the instances that announce it.
func routeRows(svcs []discovery.Service) []RouteRow {
	type key struct{ method, path, worker, subject string }
	count := map[key]int{}
	for _, s := range svcs {
		seen := map[key]bool{}
		for _, r := range s.Routes {
			path := r.Pattern
			if r.Method != "" {
				path = strings.TrimPrefix(path, r.Method+" ")
			}
			k := key{r.Method, path, s.Name, r.Subject}
			if !seen[k] {
				seen[k] = true
				count[k]++
			}
		}
	}
	// The owner is decided by the rule every gateway applies.
	reg := discovery.NewRegistry(time.Hour)
	now := time.Now()
	for _, s := range svcs {
		reg.Seen(s, now)
	}
	rows := make([]RouteRow, 0, len(count))
	for k, n := range count {
		row := RouteRow{Method: k.method, Path: k.path, Worker: k.worker, Replicas: n, Subject: k.subject}
		if st, ok := reg.State(discovery.RouteKey(k.method, k.subject)); ok && st.Contested() {
			row.Owner = st.Owner
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Method != b.Method {
			return a.Method < b.Method
		}
		return a.Worker < b.Worker
	})
	return rows
}

// withoutImpliedHEAD drops the HEAD rows that only shadow a GET route of
// the same worker (a Go ServeMux GET pattern also matches HEAD, so the
// SDK announces both): tables for people stay half as long.
func withoutImpliedHEAD(rows []RouteRow) []RouteRow {
	type key struct{ path, worker string }
	get := map[key]bool{}
	for _, r := range rows {
		if r.Method == "GET" {
			get[key{r.Path, r.Worker}] = true
		}
	}
	out := make([]RouteRow, 0, len(rows))
	for _, r := range rows {
		if r.Method == "HEAD" && get[key{r.Path, r.Worker}] {
			continue
		}
		out = append(out, r)
	}
	return out
}

// writeRouteTable writes rows as an aligned table, indented by indent.
func writeRouteTable(w io.Writer, rows []RouteRow, indent string, subjects bool) {
	rows = withoutImpliedHEAD(rows)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "METHOD\tPATH\tWORKER\tREPLICAS"
	if subjects {
		head += "\tSUBJECT"
	}
	fmt.Fprintln(tw, indent+head)
	for _, r := range rows {
		m := r.Method
		if m == "" {
			m = "*"
		}
		worker := r.Worker
		switch r.Owner {
		case "":
		case r.Worker:
			worker += " (owner)"
		default:
			worker += " (declines: " + r.Owner + " owns it)"
		}
		line := indent + m + "\t" + r.Path + "\t" + worker + "\t" + strconv.Itoa(r.Replicas)
		if subjects {
			line += "\t" + r.Subject
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush() //nolint:errcheck
}

// RoutesOptions is what `metro routes` needs.
type RoutesOptions struct {
	// Server is a NATS URL; "" means $NATS_URL, then the .metro/dev.json
	// of a running metro dev found from Dir upward.
	Server string
	Dir    string
	Getenv func(string) string
	JSON   bool // JSON even on a terminal
	TTY    bool // stdout is a terminal: a table unless JSON
	Out    io.Writer
	// Err, when set, gets a warning for each route that more than one
	// service announces.
	Err io.Writer
	// Wait is how long services get to answer (default 500ms).
	Wait time.Duration
	// Auth is the credentials given; else NATS_CREDS/NATS_NKEY, else the
	// tools identity of the running metro dev.
	Auth natsconn.Auth
}

// Routes prints the route table that running services announce now.
func Routes(ctx context.Context, o RoutesOptions) error {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Wait <= 0 {
		o.Wait = 500 * time.Millisecond
	}
	t, err := natsconn.Resolve(o.Server, o.Getenv("NATS_URL"), o.Dir)
	if err != nil {
		return err
	}
	url, prefix := t.URL, o.Getenv("METRO_PREFIX")
	if t.FromDev {
		prefix = t.Prefix
	}
	auth, err := t.Auth(natsauth.RoleTools, o.Auth, o.Getenv).Options()
	if err != nil {
		return err
	}
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("metro routes"), nats.Timeout(5 * time.Second), natsconn.Inbox(natsauth.RoleTools, "")}, auth...)...)
	if err != nil {
		return fmt.Errorf("connecting to NATS at %s: %w", natsconn.Redact(url), err)
	}
	defer nc.Close()
	svcs, err := discovery.Collect(ctx, nc, prefix, o.Wait)
	if err != nil {
		return fmt.Errorf("asking services for their routes: %w", err)
	}
	rows := routeRows(svcs)
	if o.Err != nil {
		warnContested(o.Err, rows)
	}
	if o.JSON || !o.TTY {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(o.Out, "no routes: no running service announces one")
		return nil
	}
	writeRouteTable(o.Out, rows, "", true)
	return nil
}

// warnContested writes one line for each route that more than one service
// announces: each of their queue groups gets every request, and only the
// owner runs it.
func warnContested(w io.Writer, rows []RouteRow) {
	type route struct{ method, path string }
	services := map[route][]string{}
	owner := map[route]string{}
	var order []route
	for _, r := range rows {
		if r.Owner == "" {
			continue
		}
		k := route{r.Method, r.Path}
		if _, ok := owner[k]; !ok {
			order = append(order, k)
		}
		owner[k] = r.Owner
		services[k] = append(services[k], r.Worker)
	}
	for _, k := range order {
		m := k.method
		if m == "" {
			m = "*"
		}
		fmt.Fprintf(w, "warning: %s %s is announced by %s; only %s runs its requests\n", m, k.path, strings.Join(services[k], ", "), owner[k])
	}
}
