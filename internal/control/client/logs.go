package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/httpwire"
)

// Logs writes the output of the named service to out as horust sends it:
// the last q.Lines lines, then with q.Follow what the service writes, until
// ctx ends (which is not an error when following: it is how a follow
// stops). Its errors are those of the other methods; output that horust
// never sees is an *APIError with the code "not_kept", whose message says
// how to keep it.
func (c *Client) Logs(ctx context.Context, name string, q control.LogsQuery, out io.Writer) error {
	p, err := servicePath(name)
	if err != nil {
		return err
	}
	var werr error
	err = c.exchange(ctx, "GET", p+"/logs?"+q.Encode(), nil, func(sl httpwire.StatusLine, body io.Reader) error {
		if sl.Code != 200 {
			data, err := io.ReadAll(io.LimitReader(body, maxReplyBytes))
			if err != nil {
				return err
			}
			return apiError(sl.Code, sl.Reason, data)
		}
		buf := make([]byte, 64<<10)
		for {
			n, err := body.Read(buf)
			if n > 0 {
				if _, werr = out.Write(buf[:n]); werr != nil {
					return werr
				}
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	var apiErr *APIError
	switch {
	case err == nil, errors.As(err, &apiErr):
		return err
	case werr != nil:
		return fmt.Errorf("write the output: %w", werr)
	case q.Follow && errors.Is(err, context.Canceled):
		return nil
	}
	return c.connError(ctx, err)
}
