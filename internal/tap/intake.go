package tap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/subject"
)

// sweepEvery is how often deadlines are checked and stats reported: a
// timeout shows at most this late.
const sweepEvery = 100 * time.Millisecond

// intakeQueue is how many messages the NATS client may hold for intake
// before it drops (and counts) them: about three seconds at 20,000/s.
const intakeQueue = 1 << 16

// ErrBadSubject is wrapped by the errors of a subject or route argument
// that cannot be tapped.
var ErrBadSubject = errors.New("cannot tap")

// Subscriptions returns what to subscribe to for the subjects a user
// named: NATS subjects, wildcards allowed ("users.>"), or route patterns
// ("GET /users/{id}"). With none, it is every metro subject under prefix,
// and metroOnly is true: then only messages on metro subjects are
// requests. The inbox space is added so that replies are seen, and the
// stream space so that the parts of a streamed body are counted into
// their exchange (see flow.go).
func Subscriptions(prefix string, args []string) (subs []string, metroOnly bool, err error) {
	if len(args) == 0 {
		if prefix == "" {
			// ">" covers the inboxes too; a second subscription would
			// deliver every reply twice.
			return []string{">"}, true, nil
		}
		return []string{prefix + ".>", inboxPrefix + ">", streamRoot + ">"}, true, nil
	}
	seen := map[string]bool{}
	for _, a := range args {
		s := a
		if strings.HasPrefix(a, "/") || strings.ContainsAny(a, " \t") {
			rt, err := subject.ParsePattern(a)
			if err != nil {
				return nil, false, fmt.Errorf("%w %q: %w", ErrBadSubject, a, err)
			}
			if s, err = rt.Subscription(prefix); err != nil {
				return nil, false, fmt.Errorf("%w %q: %w", ErrBadSubject, a, err)
			}
		} else if err := validSubject(a); err != nil {
			return nil, false, fmt.Errorf("%w %q: %w", ErrBadSubject, a, err)
		}
		if !seen[s] {
			seen[s] = true
			subs = append(subs, s)
		}
	}
	if !seen[">"] && !seen[inboxPrefix+">"] {
		subs = append(subs, inboxPrefix+">")
	}
	if !seen[">"] && !seen[streamRoot+">"] {
		subs = append(subs, streamRoot+">")
	}
	return subs, false, nil
}

// validSubject checks a subscription subject as nats-server would, so a
// typo is a clear error instead of a silent subscription to nothing.
func validSubject(s string) error {
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return errors.New("empty token")
		case strings.ContainsAny(t, " \t\r\n"):
			return errors.New("white space in a subject")
		case t == ">" && i != len(toks)-1:
			return errors.New("> must be the last token")
		case len(t) > 1 && strings.ContainsAny(t, "*>"):
			return errors.New("a wildcard must be a whole token")
		}
	}
	return nil
}

// Intake owns tap's subscriptions and the goroutine that pairs what they
// deliver.
type Intake struct {
	nc       *nats.Conn
	subjects []string
	subs     []*nats.Subscription
	ch       chan *nats.Msg
	pairer   *Pairer
	prefix   string
	recorder Recorder
}

// Subscribe subscribes to the subjects args name under prefix (see
// Subscriptions) and returns once the server has them, so that every
// message published after it returns is seen. The subscriptions are plain:
// never in a queue group, so tap takes no request from a worker.
func Subscribe(nc *nats.Conn, prefix string, args []string) (*Intake, error) {
	subjects, metroOnly, err := Subscriptions(prefix, args)
	if err != nil {
		return nil, err
	}
	in := &Intake{
		nc:       nc,
		subjects: subjects,
		// One channel for all subscriptions: the connection's read loop
		// fills it in wire order, so a request comes before its reply.
		ch:     make(chan *nats.Msg, intakeQueue),
		pairer: NewPairer(prefix, metroOnly),
		prefix: prefix,
	}
	for _, s := range subjects {
		sub, err := nc.ChanSubscribe(s, in.ch)
		if err != nil {
			in.unsubscribe()
			return nil, fmt.Errorf("subscribing to %s: %w", s, err)
		}
		in.subs = append(in.subs, sub)
	}
	if err := nc.Flush(); err != nil {
		in.unsubscribe()
		return nil, fmt.Errorf("subscribing to %s: %w", strings.Join(subjects, " "), err)
	}
	return in, nil
}

// Subjects are the subjects subscribed to.
func (in *Intake) Subjects() []string { return in.subjects }

func (in *Intake) unsubscribe() {
	for _, s := range in.subs {
		_ = s.Unsubscribe()
	}
}

func (in *Intake) clientDrops() uint64 {
	var n uint64
	for _, s := range in.subs {
		if d, err := s.Dropped(); err == nil && d > 0 {
			n += uint64(d)
		}
	}
	return n
}

// Run pairs messages until ctx ends (then it returns nil) or the
// connection is closed for good, then unsubscribes. emit gets each
// exchange as it starts (Pending) and as it ends; report, if not nil,
// gets the requests in flight and the drops so far every sweep. Both run
// on Run's goroutine.
func (in *Intake) Run(ctx context.Context, emit func(Exchange), report func(inFlight int, drops uint64)) (err error) {
	defer in.unsubscribe()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if rec := in.recorder; rec != nil {
		var recErr error
		display := emit
		emit = func(ex Exchange) {
			if ex.Outcome != Pending && recErr == nil {
				if recErr = rec.Record(ex); recErr != nil {
					cancel()
				}
			}
			ex.Request.Body, ex.Response.Body = clip(ex.Request.Body), clip(ex.Response.Body)
			display(ex)
		}
		shown := report
		report = func(inFlight int, drops uint64) {
			if recErr == nil {
				if recErr = rec.Flush(); recErr != nil {
					cancel()
				}
			}
			if shown != nil {
				shown(inFlight, drops)
			}
		}
		defer func() {
			if recErr == nil {
				recErr = rec.Flush()
			}
			if err == nil && recErr != nil {
				err = fmt.Errorf("recording: %w", recErr)
			}
		}()
	}

	// Which worker answers is learnt from the services' announcements, on
	// a goroutine of its own so a slow discovery never holds up intake.
	services := make(chan discovery.Service, 64)
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Naming workers is best effort: if discovery fails, the column
		// stays empty and tapping goes on.
		_ = discovery.Watch(ctx, in.nc, in.prefix, workerRefresh, func(s discovery.Service) {
			select {
			case services <- s:
			default:
			}
		})
	}()

	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	p := in.pairer
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-in.ch:
			now := time.Now()
			if ex, ok := p.Observe(m, now); ok {
				emit(ex)
			}
			// Take what else is queued before going back to select, which
			// at high rates saves a select per message.
		drain:
			for range 256 {
				select {
				case m = <-in.ch:
					if ex, ok := p.Observe(m, time.Now()); ok {
						emit(ex)
					}
				default:
					break drain
				}
			}
		case s := <-services:
			p.AddService(s, time.Now())
		case now := <-tick.C:
			if in.nc.IsClosed() {
				return fmt.Errorf("tapping %s: %w", strings.Join(in.subjects, " "), nats.ErrConnectionClosed)
			}
			p.Expire(now, emit)
			p.workers.prune(now)
			if report != nil {
				report(p.Pending(), in.clientDrops()+p.Dropped())
			}
		}
	}
}

// clip keeps what the display shows of a body recorded whole, in a copy
// of its own so that the display's buffer pins no whole payload.
func clip(b []byte) []byte {
	if len(b) <= MaxBody {
		return b
	}
	return append([]byte(nil), b[:MaxBody]...)
}
