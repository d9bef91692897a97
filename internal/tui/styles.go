package tui

import "github.com/charmbracelet/lipgloss"

// The styles of the program, in one place. Under NO_COLOR (or in tests)
// the colour profile is ASCII and they render as plain text.
var (
	titleStyle    = lipgloss.NewStyle().Bold(true)
	dimStyle      = lipgloss.NewStyle().Faint(true)
	headerStyle   = lipgloss.NewStyle().Bold(true).Underline(true)
	selectedStyle = lipgloss.NewStyle().Reverse(true)
	pausedStyle   = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("11"))
	errorStyle    = lipgloss.NewStyle().Foreground(lipgloss.Color("9"))
	sectionStyle  = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("12"))

	status2xx = lipgloss.NewStyle().Foreground(lipgloss.Color("10"))
	status3xx = lipgloss.NewStyle().Foreground(lipgloss.Color("14"))
	status4xx = lipgloss.NewStyle().Foreground(lipgloss.Color("11"))
	status5xx = lipgloss.NewStyle().Foreground(lipgloss.Color("9")).Bold(true)

	jsonKey    = lipgloss.NewStyle().Foreground(lipgloss.Color("12"))
	jsonString = lipgloss.NewStyle().Foreground(lipgloss.Color("10"))
	jsonNumber = lipgloss.NewStyle().Foreground(lipgloss.Color("14"))
	jsonLit    = lipgloss.NewStyle().Foreground(lipgloss.Color("13"))
)
