package tui

import "github.com/charmbracelet/bubbles/key"

// keyMap is every key the program answers to; help renders it.
type keyMap struct {
	Up, Down, PageUp, PageDown, Top, Bottom key.Binding
	Detail, Back, Filter, Pause, Clear      key.Binding
	Trace                                   key.Binding
	Help, Quit                              key.Binding
}

func newKeyMap() keyMap {
	return keyMap{
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "b"), key.WithHelp("pgup", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "f"), key.WithHelp("pgdn", "page down")),
		Top:      key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g", "oldest")),
		Bottom:   key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G", "newest, follow")),
		Detail:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details")),
		Trace:    key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "trace")),
		Back:     key.NewBinding(key.WithKeys("esc", "backspace"), key.WithHelp("esc", "back")),
		Filter:   key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		Pause:    key.NewBinding(key.WithKeys(" "), key.WithHelp("space", "pause")),
		Clear:    key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "clear")),
		Help:     key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "keys")),
		Quit:     key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
	}
}

// ShortHelp is the one-line help under the table.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Help, k.Filter, k.Pause, k.Detail, k.Quit}
}

// FullHelp is what ? shows.
func (k keyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.PageUp, k.PageDown},
		{k.Top, k.Bottom, k.Detail, k.Trace, k.Back},
		{k.Filter, k.Pause, k.Clear, k.Help, k.Quit},
	}
}
