package api

import (
	"context"
	"net/http"
	"time"

	"tresor/internal/fault"
	"tresor/internal/wire"
)

// Cluster is a clustered region's membership (package server implements
// it over the raft store). Its errors carry their kind ([fault]); a node
// that is not the leader answers membership changes with
// [fault.Unavailable] and names the leader's endpoint in LeaderEndpoint.
type Cluster interface {
	Status(ctx context.Context) (wire.ClusterStatus, error)
	NewJoinToken(ctx context.Context, ttl time.Duration) (wire.ClusterJoinToken, error)
	Join(ctx context.Context, req wire.ClusterJoinRequest) (wire.ClusterJoinResponse, error)
	Remove(ctx context.Context, nodeID string) error
	TransferLeadership(ctx context.Context, to string) error
	// LeaderEndpoint is the region endpoint of the leader ("" if unknown
	// or this node).
	LeaderEndpoint() string
}

// LeaderHeader names the leader's region endpoint on answers of a node that
// cannot do what only the leader does (a join).
const LeaderHeader = "X-Tresor-Leader-Endpoint"

func (a *API) cluster(rc *reqCtx, what string) (Cluster, error) {
	if err := requireRegionAdmin(rc, what); err != nil {
		return nil, err
	}
	return a.clusterOrNot()
}

func (a *API) clusterOrNot() (Cluster, error) {
	if a.deps.Cluster == nil {
		return nil, fault.New(fault.Conflict, "NotACluster", "this region runs as a single node; start its servers with --node-id (see docs/cluster.md)")
	}
	return a.deps.Cluster, nil
}

func (a *API) clusterStatus(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	c, err := a.cluster(rc, "read the cluster's state")
	if err != nil {
		return err
	}
	st, err := c.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (a *API) clusterJoinToken(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	c, err := a.cluster(rc, "create join tokens")
	if err != nil {
		return err
	}
	var body wire.ClusterJoinTokenRequest
	if err := decodeJSONStrict(r, &body); err != nil {
		return err
	}
	ttl := time.Hour
	if body.TTLSeconds != 0 {
		if body.TTLSeconds < 60 || body.TTLSeconds > 86400 {
			return fault.New(fault.BadParameter, "BadParameter", "ttlSeconds must be between 60 and 86400, not %d", body.TTLSeconds)
		}
		ttl = time.Duration(body.TTLSeconds) * time.Second
	}
	tok, err := c.NewJoinToken(r.Context(), ttl)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, tok)
	return nil
}

// clusterJoin serves a joining node. It needs no bearer token: the join
// token in the body authorises it.
func (a *API) clusterJoin(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	c, err := a.clusterOrNot()
	if err != nil {
		return err
	}
	var body wire.ClusterJoinRequest
	if err := decodeJSONStrict(r, &body); err != nil {
		return err
	}
	out, err := c.Join(r.Context(), body)
	if err != nil {
		if ep := c.LeaderEndpoint(); ep != "" {
			w.Header().Set(LeaderHeader, ep)
		}
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) clusterRemove(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	c, err := a.cluster(rc, "remove cluster nodes")
	if err != nil {
		return err
	}
	return changeThenStatus(w, r, c, func() error { return c.Remove(r.Context(), r.PathValue("id")) })
}

func (a *API) clusterTransfer(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	c, err := a.cluster(rc, "transfer the cluster's leadership")
	if err != nil {
		return err
	}
	var body wire.ClusterTransfer
	if err := decodeJSONStrict(r, &body); err != nil {
		return err
	}
	return changeThenStatus(w, r, c, func() error { return c.TransferLeadership(r.Context(), body.To) })
}

// changeThenStatus makes a membership change and answers the cluster's
// state after it.
func changeThenStatus(w http.ResponseWriter, r *http.Request, c Cluster, change func() error) error {
	if err := change(); err != nil {
		return err
	}
	st, err := c.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
