package discovery

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// ViewInterval is how often a View polls: it learns of metro workers from
// their announcements, and polls only to find other services and
// instances that ended without a word.
const ViewInterval = 30 * time.Second

// ViewSettle is how long a View's first use waits for the replies to its
// first poll.
const ViewSettle = 250 * time.Millisecond

// View is a Registry that follows the services on a connection, for a
// caller without a route table of its own (metro.Transport, metro call)
// that must name the owner of a route as the gateway does. It starts on
// first use, and runs until Close or until its connection is closed.
type View struct {
	nc     *nats.Conn
	prefix string

	once   sync.Once
	reg    *Registry
	ready  chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// NewView returns a view of the services under prefix on nc; nothing
// runs until Registry is called.
func NewView(nc *nats.Conn, prefix string) *View {
	return &View{nc: nc, prefix: prefix, ready: make(chan struct{}), done: make(chan struct{})}
}

// Registry starts following on the first call and returns the registry
// once the first poll had time to be answered, or nil if ctx ends first.
func (v *View) Registry(ctx context.Context) *Registry {
	v.once.Do(func() {
		v.reg = NewRegistry(3 * ViewInterval)
		var fctx context.Context
		fctx, v.cancel = context.WithCancel(context.Background())
		go func() {
			defer close(v.done)
			_ = follow(fctx, v.nc, v.prefix, ViewInterval, v.reg, watchOptions{announced: true, untilClosed: true})
		}()
		go func() {
			t := time.NewTimer(ViewSettle)
			defer t.Stop()
			select {
			case <-t.C:
			case <-v.done:
			}
			close(v.ready)
		}()
	})
	select {
	case <-v.ready:
		return v.reg
	case <-ctx.Done():
		return nil
	}
}

// Close stops following, if it started, and waits until it has.
func (v *View) Close() {
	started := true
	v.once.Do(func() { started = false; close(v.ready) })
	if !started {
		return
	}
	v.cancel()
	<-v.done
	<-v.ready
}

// Views holds one View per subject prefix on a connection: a caller may
// address services under more than one prefix. The zero value is ready.
type Views struct {
	mu     sync.Mutex
	views  map[string]*View
	closed bool
}

// Get returns the view of prefix on nc, made on first use; nil once
// Close has been called.
func (vs *Views) Get(nc *nats.Conn, prefix string) *View {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.closed {
		return nil
	}
	v := vs.views[prefix]
	if v == nil {
		if vs.views == nil {
			vs.views = map[string]*View{}
		}
		v = NewView(nc, prefix)
		vs.views[prefix] = v
	}
	return v
}

// Close stops every view and waits for them; Get returns nil after.
func (vs *Views) Close() {
	vs.mu.Lock()
	views := vs.views
	vs.views, vs.closed = nil, true
	vs.mu.Unlock()
	for _, v := range views {
		v.Close()
	}
}

// Reopen lets Get make views again after Close.
func (vs *Views) Reopen() {
	vs.mu.Lock()
	vs.closed = false
	vs.mu.Unlock()
}
