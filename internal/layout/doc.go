// Package layout holds no code: its test enforces which packages may import
// which (STYLE.md's dependency direction), using go list -deps.
package layout
