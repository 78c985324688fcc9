package sshconfig

import (
	"errors"
	"strings"
)

// splitLine splits an ssh_config line as OpenSSH does: a keyword (case
// folded), separated from its arguments by blanks or one '=', then the
// arguments, with "..." or '...' quoting and a word starting with # ending
// the line. A blank or comment line gives an empty keyword.
func splitLine(line string) (keyword string, args []string, err error) {
	s := strings.TrimRight(line, " \t\r\n\f")
	s = strings.TrimLeft(s, " \t")
	if s == "" || s[0] == '#' {
		return "", nil, nil
	}
	end := strings.IndexAny(s, " \t=")
	if end < 0 {
		return strings.ToLower(s), nil, nil
	}
	keyword, s = strings.ToLower(s[:end]), strings.TrimLeft(s[end:], " \t")
	if strings.HasPrefix(s, "=") {
		s = strings.TrimLeft(s[1:], " \t")
	}
	args, err = splitArgs(s)
	return keyword, args, err
}

var errQuotes = errors.New("unbalanced quotes")

// splitArgs is OpenSSH's argv_split with comments ending the line.
func splitArgs(s string) ([]string, error) {
	var args []string
	for i := 0; i < len(s); {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		if s[i] == '#' {
			break
		}
		var b strings.Builder
		var quote byte
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || quote == 0 && s[i+1] == ' '):
				i++
				b.WriteByte(s[i])
				continue
			case quote == 0 && (c == ' ' || c == '\t'):
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
				continue
			case quote != 0 && c == quote:
				quote = 0
				continue
			default:
				b.WriteByte(c)
				continue
			}
			break
		}
		if quote != 0 {
			return nil, errQuotes
		}
		args = append(args, b.String())
	}
	return args, nil
}
