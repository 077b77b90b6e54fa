package mjpeg

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// Open returns a reader of the MJPEG source named by source: an http:// or https:// URL
// serving multipart/x-mixed-replace (or a plain stream of JPEGs), a file of concatenated
// JPEGs, or "-" for standard input. Closing the returned closer ends the reading; for a URL,
// so does cancelling ctx.
func Open(ctx context.Context, source string, client *http.Client, maxFrame int) (Reader, io.Closer, error) {
	if source == "-" {
		return NewJPEGStream(os.Stdin, maxFrame), io.NopCloser(nil), nil
	}
	if !strings.HasPrefix(source, "http://") && !strings.HasPrefix(source, "https://") {
		f, err := os.Open(source)
		if err != nil {
			return nil, nil, fmt.Errorf("open MJPEG file: %w", err)
		}
		return NewJPEGStream(f, maxFrame), f, nil
	}
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, source, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("MJPEG request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("MJPEG stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		return nil, nil, fmt.Errorf("MJPEG stream: HTTP status %s", resp.Status)
	}
	ct := resp.Header.Get("Content-Type")
	if strings.HasPrefix(strings.ToLower(ct), "multipart/") {
		boundary, err := Boundary(ct)
		if err != nil {
			_ = resp.Body.Close()
			return nil, nil, fmt.Errorf("MJPEG stream: %w", err)
		}
		return NewMultipart(resp.Body, boundary, maxFrame), resp.Body, nil
	}
	// image/jpeg or an unlabelled stream: the JPEG markers delimit the frames.
	return NewJPEGStream(resp.Body, maxFrame), resp.Body, nil
}
