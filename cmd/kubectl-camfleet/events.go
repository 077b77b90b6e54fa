package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/camfleet/camfleet/internal/fleet"
)

// motionEvent is one motion event as the agent's API shows it (docs/agent.md); the plugin
// reads the JSON, not the agent's Go types, so it builds without the capture code.
type motionEvent struct {
	ID               int64      `json:"id"`
	Camera           string     `json:"camera"`
	Start            time.Time  `json:"start"`
	End              *time.Time `json:"end,omitempty"`
	PeakAreaPerMille int        `json:"peakAreaPerMille"`
	Box              any        `json:"box,omitempty"`
	Acks             []struct {
		User string    `json:"user"`
		Time time.Time `json:"time"`
	} `json:"acks,omitempty"`
}

func newEventsCommand(o *options) *cobra.Command {
	var f cameraFlags
	var output string
	var watch bool
	cmd := &cobra.Command{
		Use:   "events CAMERA",
		Short: "List a camera's motion events, or follow them live with --watch",
		Long: `List the motion events the camera's agent keeps (the newest 64), newest first: when each
started, how long it lasted, how much of the frame moved, and who acknowledged it.

With --watch, follow the agent's Server-Sent Events instead: a line for every event update
(started, peak, ended, acknowledged) until Ctrl-C, or until the agent ends the stream (it
does when the token expires or is revoked). -o json prints one JSON object per line.

The agent needs a token granting camera:events on the camera.`,
		Example: `  # The porch camera's recent motion
  kubectl camfleet events porch --username alice

  # Follow it live, as JSON lines for another program
  kubectl camfleet events porch --token "$TOKEN" --watch -o json`,
		Args: exactlyOne("camera"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if err := outputFormat(output); err != nil {
				return err
			}
			if watch && output == "yaml" {
				return usagef("--watch prints JSON lines or text, not yaml")
			}
			return o.events(cmd.Context(), args[0], output, watch, f)
		},
	}
	f.add(cmd, o)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the events live (Server-Sent Events) until Ctrl-C")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml (with --watch, json: one object per line)")
	registerOutputCompletion(cmd, "json", "yaml")
	return cmd
}

func (o *options) events(ctx context.Context, camera, output string, watch bool, f cameraFlags) error {
	t, err := o.target(ctx, camera, f)
	if err != nil {
		return err
	}
	if watch {
		return o.watchEvents(ctx, t, output)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := t.get(ctx, "events", t.token)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var list struct {
		Camera string        `json:"camera"`
		Events []motionEvent `json:"events"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&list); err != nil {
		return fmt.Errorf("the agent at %s sent camera %s's events in a form this plugin does not read: %w", origin(t.base), t.key(), err)
	}
	if list.Events == nil {
		list.Events = []motionEvent{}
	}
	if output != "" {
		return printStructured(o.streams.Out, output, list)
	}
	if len(list.Events) == 0 {
		fmt.Fprintf(o.streams.Out, "No motion events on camera %s.\n", t.key())
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(o.streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTARTED\tDURATION\tPEAK AREA\tACKED BY")
	for _, e := range list.Events {
		start := e.Start
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.ID, fleet.When(&start, now), duration(e, now), area(e.PeakAreaPerMille), ackers(e))
	}
	return tw.Flush()
}

// watchEvents follows the agent's Server-Sent Events until the user stops it (exit 0) or the
// agent ends the stream (exit 1: it ends when the token stops being valid, or it stopped).
func (o *options) watchEvents(ctx context.Context, t *cameraTarget, output string) error {
	resp, err := t.get(ctx, "events/stream", t.token)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if output == "" {
		fmt.Fprintf(o.streams.ErrOut, "Following motion events of camera %s (Ctrl-C to stop)\n", t.key())
	}
	err = readSSE(resp.Body, func(ev sseEvent) error {
		if ev.name != "motion" {
			return nil
		}
		if output == "json" {
			_, err := fmt.Fprintln(o.streams.Out, ev.data)
			return err
		}
		var e motionEvent
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
			return fmt.Errorf("the agent sent an event this plugin does not read: %w", err)
		}
		_, err := fmt.Fprintln(o.streams.Out, eventLine(e))
		return err
	})
	if ctx.Err() != nil {
		return nil // the user stopped it
	}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the event stream of camera %s from %s broke: %s", t.key(), origin(t.base), netReason(err))
	}
	return fmt.Errorf("the agent at %s ended the event stream of camera %s: the token expired or was revoked, or the agent stopped", origin(t.base), t.key())
}

// sseEvent is one Server-Sent Event (the subset of the format the agent sends: event, id, data).
type sseEvent struct {
	name, id, data string
}

// readSSE calls each for every event on r until r ends (io.EOF) or each fails.
func readSSE(r io.Reader, each func(sseEvent) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var ev sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(data) > 0 {
				ev.data = strings.Join(data, "\n")
				if ev.name == "" {
					ev.name = "message"
				}
				if err := each(ev); err != nil {
					return err
				}
			}
			ev, data = sseEvent{}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // a comment, such as the agent's greeting
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.name = value
		case "id":
			ev.id = value
		case "data":
			data = append(data, value)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.EOF
}

// eventLine is one update of a motion event, for --watch.
func eventLine(e motionEvent) string {
	state := "started"
	switch {
	case len(e.Acks) > 0:
		state = "acknowledged by " + ackers(e)
	case e.End != nil:
		state = "ended after " + duration(e, time.Now())
	}
	return fmt.Sprintf("%s  %s  event %d %s, peak area %s", e.Start.Local().Format("15:04:05"), e.Camera, e.ID, state, area(e.PeakAreaPerMille))
}

func duration(e motionEvent, now time.Time) string {
	if e.End == nil {
		return "ongoing " + fleet.Ago(now.Sub(e.Start))
	}
	return e.End.Sub(e.Start).Round(100 * time.Millisecond).String()
}

func area(perMille int) string { return fmt.Sprintf("%d.%d%%", perMille/10, perMille%10) }

func ackers(e motionEvent) string {
	if len(e.Acks) == 0 {
		return "-"
	}
	var users []string
	for _, a := range e.Acks {
		users = append(users, a.User)
	}
	return strings.Join(users, ",")
}
