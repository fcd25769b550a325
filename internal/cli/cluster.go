package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"tresor/internal/client"
)

// clusterCommand is `tresor cluster`: the nodes of a region that runs as a
// raft cluster (docs/cluster.md). Every subcommand needs a region
// administrator.
func (a *app) clusterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Manage the nodes of a clustered region",
		Long: `Manage the nodes of a region that runs as a raft cluster (tresor server
--node-id … --bootstrap | --join …). Any node answers; membership changes are
carried out by the leader.`,
		Args: cobra.NoArgs,
	}
	var ttl time.Duration
	token := a.clientCommand(&cobra.Command{
		Use:   "join-token",
		Short: "Create a token that lets new nodes join the cluster until it expires",
		Long: `Create a join token. Give it to a new node with
  tresor server --node-id n2 --raft-addr HOST:PORT --join https://MEMBER:8443 --join-token TOKEN
The token lets any number of nodes join until it expires; it is shown only once.`,
	}, nil,
		func(cmd *cobra.Command) error {
			if ttl < time.Minute || ttl > 24*time.Hour {
				return usagef(cmd, "--ttl must be between 1m and 24h")
			}
			return nil
		},
		func(ctx context.Context, c *client.Client) (any, error) {
			return c.ClusterJoinToken(ctx, int(ttl/time.Second))
		})
	token.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token lets nodes join")

	list := a.clientCommand(&cobra.Command{
		Use:   "list",
		Short: "List the cluster's nodes: voter, leader, reachable, last contact, applied index",
	}, clusterTable, nil,
		func(ctx context.Context, c *client.Client) (any, error) {
			st, err := c.ClusterStatus(ctx)
			if err != nil {
				return nil, err
			}
			return st.Members, nil
		})
	show := a.clientCommand(&cobra.Command{
		Use:   "show",
		Short: "Show the cluster as the node answering sees it (leader, health, indexes, members)",
	}, nil, nil,
		func(ctx context.Context, c *client.Client) (any, error) { return c.ClusterStatus(ctx) })

	var nodeID string
	remove := a.clientCommand(&cobra.Command{
		Use:   "remove",
		Short: "Remove a node from the cluster (through raft's membership change)",
	}, clusterTable,
		func(cmd *cobra.Command) error {
			if nodeID == "" {
				return usagef(cmd, "--node-id is required")
			}
			return nil
		},
		func(ctx context.Context, c *client.Client) (any, error) {
			st, err := c.ClusterRemove(ctx, nodeID)
			if err != nil {
				return nil, err
			}
			return st.Members, nil
		})
	remove.Flags().StringVar(&nodeID, "node-id", "", "the node to remove (required)")

	var to string
	transfer := a.clientCommand(&cobra.Command{
		Use:   "transfer-leadership",
		Short: "Hand the leadership to another node (--to, or any up-to-date voter)",
	}, clusterTable, nil,
		func(ctx context.Context, c *client.Client) (any, error) {
			st, err := c.ClusterTransferLeadership(ctx, to)
			if err != nil {
				return nil, err
			}
			return st.Members, nil
		})
	transfer.Flags().StringVar(&to, "to", "", "the node to hand the leadership to (default: raft chooses)")

	cmd.AddCommand(token, list, show, remove, transfer)
	return cmd
}

// clusterTable is the -o table view of cluster members.
func clusterTable(v any) any {
	return mapRows(v, func(m map[string]any) row {
		return row{
			{"Node", m["id"]},
			{"Address", m["address"]},
			{"Voter", m["voter"]},
			{"Leader", m["leader"]},
			{"Reachable", m["reachable"]},
			{"LastContactMs", m["lastContactMs"]},
			{"AppliedIndex", m["appliedIndex"]},
		}
	})
}
