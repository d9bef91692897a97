package tui

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/metropolis-dev/metro/internal/tap"
)

// DefaultTick is how often the display takes what intake collected: ten
// renders a second whatever the message rate.
const DefaultTick = 100 * time.Millisecond

// Source is where exchanges come from; *tap.Feed is one.
type Source interface {
	// Take fills b with what arrived since the last take.
	Take(b *tap.Batch)
	// Stats returns the totals without taking exchanges (while paused).
	Stats() tap.Stats
}

// Config sets up a Model.
type Config struct {
	Title  string // what is tapped, for the top line
	Buffer int    // rows kept; tap.DefaultBuffer when 0
	// Tick is how often the model takes from its source. Zero means never
	// by itself: tests send TickMsg values instead, with the time to show.
	Tick     time.Duration
	Location *time.Location // for the time column; time.Local when nil
	// Traces looks up the trace an exchange belongs to (t); nil: none.
	Traces TraceFunc
}

// TickMsg makes the model take new exchanges from its source.
type TickMsg struct{ Time time.Time }

// Model is the state of the tap display. Update changes it; View only
// reads it.
type Model struct {
	src Source
	cfg Config

	width, height int

	rows    rowRing
	open    map[uint64]uint64 // Seq -> ring position of rows still pending
	visible []uint64          // ring positions of the rows that pass the filter
	cursor  int               // index into visible
	top     int               // first index of visible on screen
	follow  bool              // keep the cursor on the newest row

	paused    bool
	filter    string // applied, lower case
	filtering bool
	input     textinput.Model
	before    string // the filter to restore when editing is cancelled

	detail *tap.Exchange
	trace  *traceState // the waterfall shown instead of the detail
	vp     viewport.Model

	keys keyMap
	help help.Model

	stats   tap.Stats
	samples []sample // recent totals, for the rate
	now     time.Time
	batch   *tap.Batch // reused between takes
	// streams: a streamed exchange has been seen, and the size and latency
	// columns have room for parts and first/end times from then on. Only
	// then, so the table of a bus without streams keeps its width.
	streams bool
}

type sample struct {
	at    time.Time
	total uint64
}

// New returns a model showing what src delivers.
func New(src Source, cfg Config) Model {
	if cfg.Buffer <= 0 {
		cfg.Buffer = tap.DefaultBuffer
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	in := textinput.New()
	in.Prompt = "/"
	in.Placeholder = "subject, path or status"
	// A blinking cursor would redraw the screen twice a second for nothing.
	in.Cursor.SetMode(cursor.CursorStatic)
	return Model{
		src:    src,
		cfg:    cfg,
		width:  80,
		height: 24,
		rows:   newRowRing(cfg.Buffer),
		open:   map[uint64]uint64{},
		batch:  &tap.Batch{},
		follow: true,
		input:  in,
		keys:   newKeyMap(),
		help:   help.New(),
		vp:     viewport.New(80, 20),
	}
}

func (m Model) tick() tea.Cmd {
	if m.cfg.Tick <= 0 {
		return nil
	}
	return tea.Tick(m.cfg.Tick, func(t time.Time) tea.Msg { return TickMsg{Time: t} })
}

// Init starts the ticks.
func (m Model) Init() tea.Cmd { return m.tick() }

// Update applies one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		m.resizeDetail()
		m.scroll()
		return m, nil
	case TickMsg:
		m.take(msg.Time)
		return m, m.tick()
	case tea.KeyMsg:
		return m.key(msg)
	case traceMsg:
		m.gotTrace(msg)
		return m, nil
	}
	return m, nil
}

func (m *Model) take(now time.Time) {
	m.now = now
	if m.paused {
		m.stats = m.src.Stats()
	} else {
		m.src.Take(m.batch)
		m.stats = m.batch.Stats
		m.add(m.batch.Exchanges)
		m.lose(m.batch.Lost)
		clear(m.batch.Exchanges) // drop references to bodies until the next take
	}
	m.samples = append(m.samples, sample{at: now, total: m.stats.Total})
	// The rate is over about the last second, whatever the tick.
	for len(m.samples) > 2 && now.Sub(m.samples[1].at) >= time.Second {
		m.samples = m.samples[1:]
	}
}

// add takes a batch: a started exchange becomes a new row, a finished one
// replaces its pending row (or is a new row when its start never made it
// here). visible, the cursor and the scroll position stay on the same rows
// as the ring evicts old ones.
func (m *Model) add(batch []tap.Exchange) {
	if len(batch) == 0 {
		return
	}
	first := m.rows.end()
	for i := range batch {
		ex := &batch[i]
		if ex.Streamed() != "" {
			m.streams = true
		}
		if ex.Outcome != tap.Pending {
			if pos, ok := m.open[ex.Seq]; ok {
				delete(m.open, ex.Seq)
				if pos >= m.rows.base {
					m.replace(pos, *ex, first)
					continue
				}
			}
		}
		if m.rows.full() {
			if old := m.rows.at(m.rows.base); old.Outcome == tap.Pending {
				delete(m.open, old.Seq)
			}
		}
		if ex.Outcome == tap.Pending {
			m.open[ex.Seq] = m.rows.end()
		}
		m.rows.push(*ex)
	}
	if first < m.rows.base {
		first = m.rows.base // evicted by the same batch
	}
	m.trim()
	for pos := first; pos < m.rows.end(); pos++ {
		if m.match(m.rows.at(pos)) {
			m.visible = append(m.visible, pos)
		}
	}
	m.scroll()
}

// lose marks pending rows whose end was dropped before it got here.
func (m *Model) lose(seqs []uint64) {
	for _, seq := range seqs {
		pos, ok := m.open[seq]
		if !ok {
			continue
		}
		delete(m.open, seq)
		if pos >= m.rows.base {
			ex := *m.rows.at(pos)
			ex.Outcome = tap.Lost
			m.replace(pos, ex, m.rows.end())
		}
	}
	m.scroll()
}

// replace puts ex in the row at pos. Rows below fresh are in visible
// already if they matched, so a change of match adds or removes them
// there; rows from fresh on are filtered by the caller.
func (m *Model) replace(pos uint64, ex tap.Exchange, fresh uint64) {
	*m.rows.at(pos) = ex
	if pos >= fresh {
		return
	}
	i, shown := slices.BinarySearch(m.visible, pos)
	switch now := m.match(&ex); {
	case now && !shown:
		m.visible = slices.Insert(m.visible, i, pos)
		if i <= m.cursor && !m.follow {
			m.cursor++ // stay on the same row
		}
	case !now && shown:
		m.visible = slices.Delete(m.visible, i, i+1)
		if i < m.cursor {
			m.cursor--
		}
	}
}

// trim forgets visible rows the ring has evicted.
func (m *Model) trim() {
	n := 0
	for n < len(m.visible) && m.visible[n] < m.rows.base {
		n++
	}
	if n == 0 {
		return
	}
	m.visible = append(m.visible[:0], m.visible[n:]...)
	m.cursor = max(m.cursor-n, 0)
	m.top = max(m.top-n, 0)
}

func (m *Model) refilter() {
	m.visible = m.visible[:0]
	for pos := m.rows.base; pos < m.rows.end(); pos++ {
		if m.match(m.rows.at(pos)) {
			m.visible = append(m.visible, pos)
		}
	}
	m.follow = true
	m.scroll()
}

// match reports whether ex passes the filter: a case-insensitive part of
// its subject, method, path, worker, status or outcome; "5xx" and the
// like match a status class.
func (m *Model) match(ex *tap.Exchange) bool {
	f := m.filter
	if f == "" {
		return true
	}
	if len(f) == 3 && f[1:] == "xx" && f[0] >= '1' && f[0] <= '5' {
		return ex.Status/100 == int(f[0]-'0')
	}
	status := ""
	if ex.Status != 0 {
		status = strconv.Itoa(ex.Status)
	}
	streamed := ""
	switch {
	case ex.Broken():
		streamed = "broken streamed"
	case ex.Streamed() != "":
		streamed = "streamed"
	}
	for _, s := range [...]string{ex.Subject, ex.Method, ex.Path, ex.Worker, status, ex.Outcome.String(), streamed} {
		if containsFold(s, f) {
			return true
		}
	}
	return false
}

func containsFold(s, lowerSub string) bool {
	if len(lowerSub) > len(s) {
		return false
	}
	return strings.Contains(strings.ToLower(s), lowerSub)
}

// tableRows is how many rows fit under the header lines and above the
// footer.
func (m *Model) tableRows() int {
	return max(m.height-chromeLines-m.helpLines()+1, 1)
}

func (m *Model) helpLines() int {
	if !m.help.ShowAll {
		return 1
	}
	n := 1
	for _, col := range m.keys.FullHelp() {
		n = max(n, len(col))
	}
	return n
}

// scroll keeps the cursor in range and on screen, on the newest row when
// following.
func (m *Model) scroll() {
	n := len(m.visible)
	if m.follow || m.cursor >= n {
		m.cursor = n - 1
	}
	m.cursor = max(m.cursor, 0)
	h := m.tableRows()
	if m.follow {
		m.top = max(n-h, 0)
		return
	}
	if m.cursor < m.top {
		m.top = m.cursor
	}
	if m.cursor >= m.top+h {
		m.top = m.cursor - h + 1
	}
	m.top = max(min(m.top, n-h), 0)
}

func (m *Model) move(delta int) {
	n := len(m.visible)
	if n == 0 {
		return
	}
	m.cursor = min(max(m.cursor+delta, 0), n-1)
	// Following resumes when the user comes back to the newest row.
	m.follow = m.cursor == n-1
	m.scroll()
}

func (m Model) key(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	if msg.Type == tea.KeyCtrlC {
		return m, tea.Quit
	}
	if m.filtering {
		return m.filterKey(msg)
	}
	if m.detail != nil {
		switch {
		case key.Matches(msg, m.keys.Quit):
			return m, tea.Quit
		case key.Matches(msg, m.keys.Back), key.Matches(msg, m.keys.Detail):
			m.detail, m.trace = nil, nil
			return m, nil
		}
		var cmd tea.Cmd
		m.vp, cmd = m.vp.Update(msg)
		return m, cmd
	}
	switch {
	case key.Matches(msg, m.keys.Quit):
		return m, tea.Quit
	case key.Matches(msg, m.keys.Up):
		m.move(-1)
	case key.Matches(msg, m.keys.Down):
		m.move(1)
	case key.Matches(msg, m.keys.PageUp):
		m.move(-m.tableRows())
	case key.Matches(msg, m.keys.PageDown):
		m.move(m.tableRows())
	case key.Matches(msg, m.keys.Top):
		m.move(-len(m.visible))
	case key.Matches(msg, m.keys.Bottom):
		m.move(len(m.visible))
	case key.Matches(msg, m.keys.Detail):
		if len(m.visible) > 0 {
			ex := *m.rows.at(m.visible[m.cursor])
			m.detail = &ex
			m.resizeDetail()
			m.vp.SetContent(renderDetail(&ex, m.vp.Width, m.cfg.Location))
			m.vp.GotoTop()
		}
	case key.Matches(msg, m.keys.Trace):
		if len(m.visible) > 0 {
			return m, m.openTrace(*m.rows.at(m.visible[m.cursor]))
		}
	case key.Matches(msg, m.keys.Back):
		if m.filter != "" {
			m.filter = ""
			m.input.SetValue("")
			m.refilter()
		}
	case key.Matches(msg, m.keys.Filter):
		m.filtering = true
		m.before = m.input.Value()
		m.input.CursorEnd()
		return m, m.input.Focus()
	case key.Matches(msg, m.keys.Pause):
		m.paused = !m.paused
	case key.Matches(msg, m.keys.Clear):
		m.rows.clear()
		clear(m.open)
		m.visible = m.visible[:0]
		m.cursor, m.top, m.follow = 0, 0, true
	case key.Matches(msg, m.keys.Help):
		m.help.ShowAll = !m.help.ShowAll
		m.scroll()
	}
	return m, nil
}

// filterKey edits the filter, applying it as it is typed: Enter keeps it,
// Esc puts back the one before.
func (m Model) filterKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch msg.Type {
	case tea.KeyEnter:
		m.filtering = false
		m.input.Blur()
		return m, nil
	case tea.KeyEsc:
		m.filtering = false
		m.input.Blur()
		m.input.SetValue(m.before)
		m.setFilter(m.before)
		return m, nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	m.setFilter(m.input.Value())
	return m, cmd
}

func (m *Model) setFilter(f string) {
	f = strings.ToLower(strings.TrimSpace(f))
	if f == m.filter {
		return
	}
	m.filter = f
	m.refilter()
}

func (m *Model) resizeDetail() {
	m.vp.Width = max(m.width, 1)
	m.vp.Height = max(m.height-2, 1)
	switch {
	case m.trace != nil:
		m.vp.SetContent(renderTrace(m.trace, m.vp.Width))
	case m.detail != nil:
		m.vp.SetContent(renderDetail(m.detail, m.vp.Width, m.cfg.Location))
	}
}

// rowRing keeps the latest exchanges. Positions count every row ever
// pushed, so a position stays valid (or visibly evicted: below base)
// while the ring turns.
type rowRing struct {
	buf  []tap.Exchange
	base uint64 // position of the oldest row held
	n    int
}

func newRowRing(size int) rowRing { return rowRing{buf: make([]tap.Exchange, size)} }

func (r *rowRing) end() uint64 { return r.base + uint64(r.n) }

func (r *rowRing) full() bool { return r.n == len(r.buf) }

func (r *rowRing) push(ex tap.Exchange) {
	r.buf[r.end()%uint64(len(r.buf))] = ex
	if r.n == len(r.buf) {
		r.base++
	} else {
		r.n++
	}
}

func (r *rowRing) at(pos uint64) *tap.Exchange { return &r.buf[pos%uint64(len(r.buf))] }

func (r *rowRing) clear() {
	clear(r.buf)
	r.base, r.n = r.end(), 0
}
