package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
)

// readAutosshUnit reads a systemd unit (its [Service] Environment,
// EnvironmentFile, User and ExecStart) or an /etc/default file (variables;
// the one holding an autossh command line, or the ssh options) and returns
// the autossh run it describes.
func readAutosshUnit(path string) (autosshInvocation, error) {
	lines, err := readLines(path)
	if err != nil {
		return autosshInvocation{}, err
	}
	in := autosshInvocation{env: map[string]string{}, source: path}
	isUnit := false
	for _, l := range lines {
		if strings.HasPrefix(l.text, "[") {
			isUnit = true
		}
	}
	if !isUnit {
		return readDefaultFile(path, lines, in)
	}
	var exec []string
	section, userName := "", ""
	for _, l := range lines {
		if strings.HasPrefix(l.text, "[") {
			section = l.text
			continue
		}
		key, val, ok := strings.Cut(l.text, "=")
		if !ok || section != "[Service]" {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "Environment":
			words, err := splitCommand(val)
			if err != nil {
				return in, fmt.Errorf("%s:%d: Environment: %v", path, l.n, err)
			}
			for _, w := range words {
				if k, v, ok := strings.Cut(w, "="); ok {
					in.env[k] = v
				}
			}
		case "EnvironmentFile":
			optional := strings.HasPrefix(val, "-")
			envPath := strings.TrimPrefix(val, "-")
			envLines, err := readLines(envPath)
			if err != nil {
				if optional {
					continue
				}
				return in, fmt.Errorf("%s:%d: EnvironmentFile %s: %v: import on the machine that has it, or prefix it with - if it is optional", path, l.n, envPath, err)
			}
			if err := readAssignments(envPath, envLines, in.env); err != nil {
				return in, err
			}
		case "User":
			userName = val
		case "ExecStart":
			if exec != nil {
				return in, fmt.Errorf("%s:%d: a second ExecStart: import one autossh command at a time", path, l.n)
			}
			val = strings.TrimLeft(val, "-@+!:")
			if exec, err = splitCommand(val); err != nil {
				return in, fmt.Errorf("%s:%d: ExecStart: %v", path, l.n, err)
			}
			if len(exec) == 0 {
				return in, fmt.Errorf("%s:%d: ExecStart is empty", path, l.n)
			}
		}
	}
	if exec == nil {
		return in, fmt.Errorf("%s: no ExecStart= in [Service]: is this the unit that runs autossh?", path)
	}
	in.argv = expandUnitVars(exec, in.env)
	if b := filepath.Base(in.argv[0]); b != "autossh" && b != "ssh" && b != "env" {
		return in, fmt.Errorf("%s: ExecStart runs %s, not autossh or ssh", path, in.argv[0])
	}
	in.runAs, err = unitAccount(userName)
	return in, err
}

// unitAccount is the account a unit's User= names, root without one.
func unitAccount(name string) (account, error) {
	if name == "" {
		name = "root"
	}
	u, err := user.Lookup(name)
	if err != nil {
		// Importing on another machine than the one that ran it: the usual home.
		home := "/home/" + name
		if name == "root" {
			home = "/root"
		}
		return account{name: name, home: home}, nil
	}
	return account{name: u.Username, home: u.HomeDir}, nil
}

// readDefaultFile takes an /etc/default file: AUTOSSH_* variables, and
// the command in the variable that holds "autossh ..." or, failing that,
// the ssh options with a -R.
func readDefaultFile(path string, lines []line, in autosshInvocation) (autosshInvocation, error) {
	vars := map[string]string{}
	if err := readAssignments(path, lines, vars); err != nil {
		return in, err
	}
	var candidates []string
	for k, v := range vars {
		if strings.HasPrefix(k, "AUTOSSH_") {
			in.env[k] = v
			continue
		}
		words, err := splitCommand(v)
		if err != nil {
			return in, fmt.Errorf("%s: %s: %v", path, k, err)
		}
		for _, w := range words {
			if filepath.Base(w) == "autossh" || strings.HasPrefix(w, "-R") {
				candidates = append(candidates, k)
				break
			}
		}
	}
	switch len(candidates) {
	case 0:
		return in, fmt.Errorf("%s: no variable holds an autossh command or -R options", path)
	case 1:
	default:
		return in, fmt.Errorf("%s: several variables look like the command (%s): import the unit that uses them with --unit", path, strings.Join(candidates, ", "))
	}
	words, _ := splitCommand(vars[candidates[0]])
	in.argv = words
	var err error
	in.runAs, err = currentAccount()
	return in, err
}

type line struct {
	n    int
	text string
}

// readLines reads a unit or environment file: comments and blank lines
// dropped, backslash-continued lines joined.
func readLines(path string) ([]line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Unwrap(err)
	}
	defer f.Close()
	var out []line
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 {
			start = n
			if text == "" || text[0] == '#' || text[0] == ';' {
				continue
			}
		}
		if strings.HasSuffix(text, "\\") {
			cur.WriteString(strings.TrimSuffix(text, "\\") + " ")
			continue
		}
		cur.WriteString(text)
		out = append(out, line{n: start, text: cur.String()})
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, line{n: start, text: cur.String()})
	}
	return out, sc.Err()
}

// readAssignments reads KEY=value lines (optionally "export KEY=value",
// the value quoted) into vars.
func readAssignments(path string, lines []line, vars map[string]string) error {
	for _, l := range lines {
		text := strings.TrimPrefix(l.text, "export ")
		k, v, ok := strings.Cut(text, "=")
		if !ok || strings.ContainsAny(k, " \t") {
			return fmt.Errorf("%s:%d: not KEY=value: %s", path, l.n, l.text)
		}
		words, err := splitCommand(v)
		if err != nil {
			return fmt.Errorf("%s:%d: %v", path, l.n, err)
		}
		vars[k] = strings.Join(words, " ")
		if len(words) == 1 {
			vars[k] = words[0]
		}
	}
	return nil
}

// splitCommand splits a command line the way systemd and sh do for the
// simple cases units use: blanks separate, quotes group, backslash escapes.
func splitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\\' && quote != '\'' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			inWord = true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unbalanced %c quote", quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// expandUnitVars expands $VAR (a whole word: split into words, as systemd
// does) and ${VAR} (inside a word) from the unit's environment.
func expandUnitVars(argv []string, env map[string]string) []string {
	var out []string
	for _, w := range argv {
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") {
			out = append(out, strings.Fields(env[w[1:]])...)
			continue
		}
		out = append(out, os.Expand(w, func(k string) string { return env[k] }))
	}
	return out
}
