// Package sshconfig resolves a Host alias from an OpenSSH client config file
// the way `ssh -G -F FILE ALIAS` does: Host and Match blocks, first value
// wins, Include, %-tokens and ~, a final Match pass, and ProxyJump hops
// resolved as aliases of their own.
//
// It is translation, like package config's YAML: it reads files and returns
// values, and never connects. It imports only the standard library. Directives
// that change how the connection is made and that rtunnel cannot honour
// (ProxyCommand, Match exec, ...) are refused with file:line, never ignored.
package sshconfig
