package wire

import "time"

// ClusterStatus is a cluster's state as one node sees it (GET /tresor/cluster).
type ClusterStatus struct {
	// NodeID is the node that answered.
	NodeID string `json:"nodeId"`
	// Leader is the leader's node id ("" while there is none).
	Leader string `json:"leader"`
	// Healthy: the node that answered serves (it has heard from a leader
	// within its lease, or is the leader).
	Healthy bool   `json:"healthy"`
	Message string `json:"message,omitempty"`
	// CommitIndex and AppliedIndex are the answering node's raft indexes.
	CommitIndex  uint64          `json:"commitIndex"`
	AppliedIndex uint64          `json:"appliedIndex"`
	Members      []ClusterMember `json:"members"`
}

// ClusterMember is one server of the raft configuration.
type ClusterMember struct {
	ID        string `json:"id"`
	Address   string `json:"address"`
	Voter     bool   `json:"voter"`
	Leader    bool   `json:"leader"`
	Reachable bool   `json:"reachable"`
	// LastContactMs is how long ago the member last heard from the leader,
	// as it reports it (0 for the leader).
	LastContactMs int64  `json:"lastContactMs"`
	AppliedIndex  uint64 `json:"appliedIndex"`
}

// ClusterJoinTokenRequest asks for a join token (POST /tresor/cluster/join-tokens).
type ClusterJoinTokenRequest struct {
	// TTLSeconds is how long the token is valid (default 3600, at most 86400).
	TTLSeconds int `json:"ttlSeconds,omitempty"`
}

// ClusterJoinToken authorises nodes to join until it expires.
type ClusterJoinToken struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// ClusterJoinRequest is what a new node sends (POST /tresor/cluster/join).
type ClusterJoinRequest struct {
	NodeID   string `json:"nodeId"`
	RaftAddr string `json:"raftAddr"`
	Token    string `json:"token"`
	// PublicKey is the node's TLS key (PKIX DER) that the cluster CA
	// certifies for the cluster link.
	PublicKey []byte `json:"publicKey"`
	// ExchangeKey is an X25519 public key: the cluster's seal key is
	// encrypted to it.
	ExchangeKey []byte `json:"exchangeKey"`
}

// ClusterJoinResponse is what the leader answers a joining node.
type ClusterJoinResponse struct {
	// CACert and NodeCert are PEM: the cluster CA and the node's
	// certificate for the cluster link.
	CACert   string `json:"caCert"`
	NodeCert string `json:"nodeCert"`
	// ServerKey is the leader's ephemeral X25519 public key; SealedKey the
	// cluster's seal key under AES-256-GCM with a key derived (HKDF-SHA-256)
	// from the X25519 shared secret.
	ServerKey []byte `json:"serverKey"`
	SealedKey []byte `json:"sealedKey"`
	// AppliedIndex is the leader's applied index when it answered: the new
	// node serves once it has applied at least as much.
	AppliedIndex uint64 `json:"appliedIndex"`
	Leader       string `json:"leader"`
}

// ClusterTransfer asks the leader to hand leadership over
// (POST /tresor/cluster/transfer-leadership); To "" lets raft choose.
type ClusterTransfer struct {
	To string `json:"to,omitempty"`
}
