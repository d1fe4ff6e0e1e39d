package client

import (
	"context"

	"github.com/horust-go/horust/internal/control"
)

// Reload asks horust to reload its configuration (POST /v1/reload). A
// configuration with problems is an error that wraps control.ErrInvalidConfig and
// lists them (see APIError.Problems).
func (c *Client) Reload(ctx context.Context, dryRun bool) (control.ReloadReply, error) {
	path := "/v1/reload"
	if dryRun {
		path += "?dry_run=1"
	}
	var rep control.ReloadReply
	err := c.do(ctx, "POST", path, nil, &rep)
	return rep, err
}

// Config returns the configuration's generation and the last reload
// (GET /v1/config).
func (c *Client) Config(ctx context.Context) (control.ConfigStatus, error) {
	var st control.ConfigStatus
	err := c.do(ctx, "GET", "/v1/config", nil, &st)
	return st, err
}
