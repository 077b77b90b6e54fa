package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
	"sigs.k8s.io/yaml"
)

// printStructured writes v as indented JSON or as YAML, for -o json|yaml.
func printStructured(w io.Writer, format string, v any) error {
	var b []byte
	var err error
	if format == "yaml" {
		b, err = yaml.Marshal(v)
	} else {
		b, err = json.MarshalIndent(v, "", "  ")
		b = append(b, '\n')
	}
	if err != nil {
		return fmt.Errorf("encode the output as %s: %w", format, err)
	}
	_, err = w.Write(b)
	return err
}

// isTerminal reports whether a stream is an interactive terminal.
func isTerminal(s any) bool {
	f, ok := s.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// terminalWidth is the width of the terminal a stream is, 0 when it is none. A terminal that
// reports no size is taken for 80 columns.
func terminalWidth(s any) int {
	if !isTerminal(s) {
		return 0
	}
	if w, _, err := term.GetSize(int(s.(*os.File).Fd())); err == nil && w > 0 {
		return w
	}
	return 80
}
