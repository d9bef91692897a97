package worker

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/metropolis-dev/metro/internal/discovery"
)

// serveServiceProtocol answers $SRV.PING, $SRV.INFO and $SRV.STATS (all
// services, by name, by name and id) as nats.go's micro package does, so
// `nats micro ls` and the gateway's discovery see the worker. The micro
// package itself is not used for the endpoints because it counts a
// request when its handler returns, and this worker's handlers run on
// after the hand-off to the pool.
func (w *Worker) serveServiceProtocol(nc *nats.Conn) ([]*nats.Subscription, error) {
	// The info does not change while the worker runs, and every gateway
	// asks for it: it is encoded once.
	info, err := json.Marshal(w.info())
	if err != nil {
		return nil, fmt.Errorf("encoding service info: %w", err)
	}
	verbs := map[string]func() ([]byte, error){
		"PING": func() ([]byte, error) {
			return json.Marshal(micro.Ping{ServiceIdentity: w.identity(), Type: micro.PingResponseType})
		},
		"INFO":  func() ([]byte, error) { return info, nil },
		"STATS": func() ([]byte, error) { return json.Marshal(w.stats()) },
	}
	var subs []*nats.Subscription
	for verb, fn := range verbs {
		fn := fn
		for _, subj := range []string{
			"$SRV." + verb,
			"$SRV." + verb + "." + w.opts.Name,
			"$SRV." + verb + "." + w.opts.Name + "." + w.id,
		} {
			sub, err := nc.Subscribe(subj, func(m *nats.Msg) {
				b, err := fn()
				if err == nil {
					_ = m.Respond(b)
				}
			})
			if err != nil {
				unsubscribe(subs)
				return nil, fmt.Errorf("subscribing to %s: %w", subj, err)
			}
			subs = append(subs, sub)
		}
	}
	return subs, nil
}

func (w *Worker) identity() micro.ServiceIdentity {
	return micro.ServiceIdentity{Name: w.opts.Name, ID: w.id, Version: w.opts.Version, Metadata: map[string]string{discovery.ProtocolKey: discovery.Protocol}}
}

func (w *Worker) info() micro.Info {
	eps := make([]micro.EndpointInfo, 0, len(w.endpoints))
	for _, ep := range w.endpoints {
		name, subj, meta := w.endpointInfo(ep)
		eps = append(eps, micro.EndpointInfo{Name: name, Subject: subj, QueueGroup: w.opts.Name, Metadata: meta})
	}
	return micro.Info{ServiceIdentity: w.identity(), Type: micro.InfoResponseType, Description: w.opts.Description, Endpoints: eps}
}

func (w *Worker) stats() micro.Stats {
	s := micro.Stats{ServiceIdentity: w.identity(), Type: micro.StatsResponseType, Started: w.started}
	for _, ep := range w.endpoints {
		n := ep.stats.requests.Load()
		total := time.Duration(ep.stats.nanos.Load())
		es := &micro.EndpointStats{
			Name:           ep.name,
			Subject:        ep.subject,
			QueueGroup:     w.opts.Name,
			NumRequests:    int(n),
			NumErrors:      int(ep.stats.errors.Load()),
			ProcessingTime: total,
		}
		if n > 0 {
			es.AverageProcessingTime = total / time.Duration(n)
		}
		if e := ep.stats.lastError.Load(); e != nil {
			es.LastError = *e
		}
		s.Endpoints = append(s.Endpoints, es)
	}
	return s
}

// announce publishes the worker's info on subj (discovery.UpSubject when it
// starts serving, DownSubject when it stops), so gateways learn of the
// change at once instead of at their next poll.
func (w *Worker) announce(nc *nats.Conn, subj string) {
	b, err := json.Marshal(w.info())
	if err == nil {
		err = nc.Publish(subj, b)
	}
	if err != nil {
		w.log.Warn("announcing the service", "subject", subj, "err", err)
	}
}
