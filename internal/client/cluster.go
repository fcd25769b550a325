package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"tresor/internal/wire"
)

// ClusterStatus returns the cluster as the node answering sees it (GET /tresor/cluster).
func (c *Client) ClusterStatus(ctx context.Context) (*wire.ClusterStatus, error) {
	var out wire.ClusterStatus
	if _, err := c.call(ctx, http.MethodGet, "/tresor/cluster", nil, &out); err != nil {
		return nil, err
	}
	if out.Members == nil {
		out.Members = []wire.ClusterMember{}
	}
	return &out, nil
}

// ClusterJoinToken creates a join token (POST /tresor/cluster/join-tokens).
func (c *Client) ClusterJoinToken(ctx context.Context, ttlSeconds int) (*wire.ClusterJoinToken, error) {
	var out wire.ClusterJoinToken
	if _, err := c.call(ctx, http.MethodPost, "/tresor/cluster/join-tokens", wire.ClusterJoinTokenRequest{TTLSeconds: ttlSeconds}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ClusterRemove removes a node from the cluster (DELETE /tresor/cluster/members/{id}).
func (c *Client) ClusterRemove(ctx context.Context, nodeID string) (*wire.ClusterStatus, error) {
	if nodeID == "" {
		return nil, errors.New("client: node id is empty")
	}
	var out wire.ClusterStatus
	if _, err := c.call(ctx, http.MethodDelete, "/tresor/cluster/members/"+url.PathEscape(nodeID), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ClusterTransferLeadership hands the leadership to another node (to "" =
// any) (POST /tresor/cluster/transfer-leadership).
func (c *Client) ClusterTransferLeadership(ctx context.Context, to string) (*wire.ClusterStatus, error) {
	var out wire.ClusterStatus
	if _, err := c.call(ctx, http.MethodPost, "/tresor/cluster/transfer-leadership", wire.ClusterTransfer{To: to}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
