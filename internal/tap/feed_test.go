package tap

import (
	"slices"
	"testing"
	"time"
)

func TestFeed(t *testing.T) {
	ex := func(seq uint64, o Outcome, lat time.Duration) Exchange {
		return Exchange{Seq: seq, Outcome: o, Status: map[Outcome]int{OK: 200}[o], Latency: lat}
	}
	tests := []struct {
		name      string
		size      int
		add       []Exchange
		wantSeqs  []uint64 // taken, in order
		wantLost  []uint64
		total     uint64
		failed    uint64
		dropped   uint64
		p50, p99  time.Duration
		intakeGot uint64 // drops reported by intake
	}{
		{
			name: "starts are not counted, finishes are", size: 10,
			add:      []Exchange{ex(1, Pending, 0), ex(1, OK, 2*time.Millisecond), ex(2, Pending, 0), ex(2, Timeout, time.Second)},
			wantSeqs: []uint64{1, 1, 2, 2}, total: 2, failed: 1, p50: 2 * time.Millisecond, p99: 2 * time.Millisecond,
		},
		{
			name: "a full queue drops the oldest; a dropped finish is named", size: 2,
			add:      []Exchange{ex(1, OK, time.Millisecond), ex(2, Pending, 0), ex(3, Pending, 0), ex(2, OK, time.Millisecond)},
			wantSeqs: []uint64{3, 2}, wantLost: []uint64{1}, total: 2, dropped: 1, p50: time.Millisecond, p99: time.Millisecond,
		},
		{
			name: "intake drops add up", size: 4, intakeGot: 7,
			add:      []Exchange{ex(1, OK, time.Millisecond)},
			wantSeqs: []uint64{1}, total: 1, dropped: 7, p50: time.Millisecond, p99: time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFeed(tt.size)
			for _, e := range tt.add {
				f.Add(e)
			}
			if tt.intakeGot > 0 {
				f.SetIntake(3, tt.intakeGot-2)
				f.SetIntake(3, tt.intakeGot) // a running total, not increments
			}
			var b Batch
			f.Take(&b)
			var seqs []uint64
			for _, e := range b.Exchanges {
				seqs = append(seqs, e.Seq)
			}
			st := b.Stats
			if !slices.Equal(seqs, tt.wantSeqs) || !slices.Equal(b.Lost, tt.wantLost) {
				t.Errorf("took %v lost %v, want %v and %v", seqs, b.Lost, tt.wantSeqs, tt.wantLost)
			}
			if st.Total != tt.total || st.Failed != tt.failed || st.Dropped != tt.dropped || st.P50 != tt.p50 || st.P99 != tt.p99 {
				t.Errorf("stats %+v, want total %d failed %d dropped %d p50 %v p99 %v", st, tt.total, tt.failed, tt.dropped, tt.p50, tt.p99)
			}
			f.Take(&b)
			if len(b.Exchanges) != 0 || len(b.Lost) != 0 {
				t.Errorf("second take %d exchanges %d lost, want none", len(b.Exchanges), len(b.Lost))
			}
		})
	}
}
