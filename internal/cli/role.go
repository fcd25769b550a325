package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"tresor/internal/client"
	"tresor/internal/wire"
)

// The twins of `az keyvault role definition|assignment …` (local RBAC of a
// managed HSM, spec §5). Their output has az's shapes, which flatten the
// service's answers.

func (a *app) roleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "role",
		Short: "Manage a managed HSM's local role definitions and assignments",
		Long: `Manage a managed HSM's local RBAC, like 'az keyvault role'.

Roles grant data actions (Microsoft.KeyVault/managedHsm/…) at a scope: '/'
(the whole HSM), '/keys' (every key) or '/keys/{key name}' (one key).`,
		Args: cobra.NoArgs,
	}
	def := &cobra.Command{Use: "definition", Short: "Manage role definitions (built-in and custom)", Args: cobra.NoArgs}
	def.AddCommand(
		a.roleDefinitionListCommand(),
		a.roleDefinitionCommand("show", "Show a role definition",
			func(ctx context.Context, c *client.Client, hsmURL, guid string) (any, error) {
				return definitionOutput(c.GetRoleDefinition(ctx, hsmURL, guid))
			}),
		a.roleDefinitionCreateCommand(false),
		a.roleDefinitionCreateCommand(true),
		a.roleDefinitionCommand("delete", "Delete a custom role definition",
			func(ctx context.Context, c *client.Client, hsmURL, guid string) (any, error) {
				_, err := c.DeleteRoleDefinition(ctx, hsmURL, guid)
				return nil, err // az prints nothing
			}),
	)
	asg := &cobra.Command{Use: "assignment", Short: "Manage role assignments", Args: cobra.NoArgs}
	asg.AddCommand(a.roleAssignmentCreateCommand(), a.roleAssignmentListCommand(), a.roleAssignmentDeleteCommand())
	cmd.AddCommand(def, asg)
	return cmd
}

// roleDefinitionOut is a role definition as az prints it.
type roleDefinitionOut struct {
	AssignableScopes []string          `json:"assignableScopes"`
	Description      string            `json:"description"`
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Permissions      []wire.Permission `json:"permissions"`
	RoleName         string            `json:"roleName"`
	RoleType         string            `json:"roleType"`
	Type             string            `json:"type"`
}

func definitionOut(d wire.RoleDefinition) roleDefinitionOut {
	perms := d.Properties.Permissions
	if perms == nil {
		perms = []wire.Permission{}
	}
	return roleDefinitionOut{AssignableScopes: d.Properties.AssignableScopes, Description: d.Properties.Description, ID: d.ID,
		Name: d.Name, Permissions: perms, RoleName: d.Properties.RoleName, RoleType: d.Properties.RoleType, Type: d.Type}
}

// definitionTable is az's table of role definitions.
func definitionTable(v any) any {
	return mapRows(v, func(m map[string]any) row {
		return row{{"Name", m["name"]}, {"RoleName", m["roleName"]}, {"Type", m["type"]}, {"Description", m["description"]}}
	})
}

func (a *app) roleDefinitionListCommand() *cobra.Command {
	var (
		h          hsmTarget
		scope      string
		customOnly bool
	)
	cmd := a.onHSM(&cobra.Command{
		Use:   "list",
		Short: "List role definitions",
	}, &h, definitionTable, nil,
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			defs, err := c.ListRoleDefinitions(ctx, hsmURL, scope, "")
			if customOnly {
				defs = slices.DeleteFunc(defs, func(d wire.RoleDefinition) bool { return d.Properties.RoleType != "CustomRole" })
			}
			return listOf(defs, definitionOut), err
		})
	cmd.Flags().StringVar(&scope, "scope", "", `scope, e.g. "/" (Managed HSM keeps role definitions at "/")`)
	optBoolVar(cmd.Flags(), &customOnly, "custom-role-only", "only show custom role definitions")
	return cmd
}

// roleDefinitionFlags are --name/-n and --role-id, which name a role
// definition.
type roleDefinitionFlags struct {
	name, roleID string
}

func (r *roleDefinitionFlags) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&r.name, "name", "n", "", `the role definition name: the GUID in its "name" property`)
	cmd.Flags().StringVar(&r.roleID, "role-id", "", "the role definition id")
}

// guid returns the GUID that --name or --role-id names, as az does: --name
// wins; --role-id must contain a slash.
func (r *roleDefinitionFlags) guid(cmd *cobra.Command) (string, error) {
	if r.name != "" {
		return r.name, nil
	}
	if r.roleID == "" {
		return "", usagef(cmd, "give --name or --role-id")
	}
	if !strings.Contains(r.roleID, "/") {
		return "", usagef(cmd, "--role-id %q is not a role resource id", r.roleID)
	}
	return lastSegment(r.roleID), nil
}

// lastSegment returns what follows the last slash of id (all of it if it
// has none): the name in a resource id.
func lastSegment(id string) string {
	return id[strings.LastIndexByte(id, '/')+1:]
}

// roleDefinitionCommand returns show or delete: a command on the role
// definition that --name or --role-id names.
func (a *app) roleDefinitionCommand(use, short string, call func(ctx context.Context, c *client.Client, hsmURL, guid string) (any, error)) *cobra.Command {
	var (
		h    hsmTarget
		r    roleDefinitionFlags
		guid string
	)
	cmd := a.onHSM(&cobra.Command{Use: use, Short: short}, &h, nil,
		func(cmd *cobra.Command) (err error) {
			guid, err = r.guid(cmd)
			return err
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			return call(ctx, c, hsmURL, guid)
		})
	r.addFlags(cmd)
	return cmd
}

// definitionOutput is what a command prints for the role definition a call
// returned with err.
func definitionOutput(d *wire.RoleDefinition, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return definitionOut(*d), nil
}

// roleDefinitionInput is what --role-definition holds: az's flat shape
// (roleName, description, actions, notActions, dataActions,
// notDataActions; name or id to update), or the shape show prints, with
// permissions.
type roleDefinitionInput struct {
	Name           *string           `json:"name"`
	ID             *string           `json:"id"`
	RoleName       string            `json:"roleName"`
	Description    string            `json:"description"`
	Actions        []string          `json:"actions"`
	NotActions     []string          `json:"notActions"`
	DataActions    []string          `json:"dataActions"`
	NotDataActions []string          `json:"notDataActions"`
	Permissions    []wire.Permission `json:"permissions"`
}

// readRoleDefinition reads --role-definition: JSON text, @file, or the
// path of a file, as az does. Keys starting with a capital letter are
// lower-cased first (az: "to work around service defects").
func readRoleDefinition(arg string) (roleDefinitionInput, error) {
	var in roleDefinitionInput
	data := []byte(arg)
	switch {
	case strings.HasPrefix(arg, "@"):
		b, err := os.ReadFile(arg[1:])
		if err != nil {
			return in, err
		}
		data = b
	default:
		if st, err := os.Stat(arg); err == nil && st.Mode().IsRegular() {
			b, err := os.ReadFile(arg)
			if err != nil {
				return in, err
			}
			data = b
		}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return in, errors.New("invalid role definition: a JSON object is expected (JSON text, @file or a file path)")
	}
	camel := map[string]json.RawMessage{}
	for k, v := range raw {
		if k != "" {
			k = strings.ToLower(k[:1]) + k[1:]
		}
		camel[k] = v
	}
	b, _ := json.Marshal(camel)
	if err := json.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("invalid role definition: %v", err)
	}
	return in, nil
}

func (a *app) roleDefinitionCreateCommand(update bool) *cobra.Command {
	var (
		h    hsmTarget
		def  string
		name string
		perm wire.Permission
		in   roleDefinitionInput
	)
	use, short := "create", "Create a custom role definition"
	if update {
		use, short = "update", "Update a custom role definition (its JSON names it by name or id)"
	}
	cmd := a.onHSM(&cobra.Command{
		Use:   use,
		Short: short,
		Example: `  tresor role definition create --hsm-name ContosoMHSM --role-definition '{
    "roleName": "My Signer", "description": "signs with keys",
    "dataActions": ["Microsoft.KeyVault/managedHsm/keys/sign/action", "Microsoft.KeyVault/managedHsm/keys/read/action"]}'`,
	}, &h, nil,
		func(cmd *cobra.Command) (err error) {
			if def == "" {
				return usagef(cmd, "--role-definition is required")
			}
			if in, err = readRoleDefinition(def); err != nil {
				return usagef(cmd, "--role-definition: %v", err)
			}
			name = newRBACGUID()
			if update {
				switch {
				case in.Name != nil && *in.Name != "":
					name = *in.Name
				case in.ID != nil && strings.Contains(*in.ID, "/"):
					name = lastSegment(*in.ID)
				default:
					return usagef(cmd, `--role-definition: give the role's "name" or "id" property to update it`)
				}
			}
			perm = wire.Permission{Actions: in.Actions, NotActions: in.NotActions, DataActions: in.DataActions, NotDataActions: in.NotDataActions}
			if in.Actions == nil && in.NotActions == nil && in.DataActions == nil && in.NotDataActions == nil && len(in.Permissions) == 1 {
				perm = in.Permissions[0]
			}
			return nil
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			return definitionOutput(c.SetRoleDefinition(ctx, hsmURL, name, wire.RoleDefinitionProperties{
				RoleName: in.RoleName, Description: in.Description, RoleType: "CustomRole", Permissions: []wire.Permission{perm}}))
		})
	cmd.Flags().StringVar(&def, "role-definition", "", "the role as JSON, @file, or the path of a JSON file (required)")
	return cmd
}

// roleAssignmentOut is a role assignment as az prints it.
type roleAssignmentOut struct {
	ID               string  `json:"id"`
	Name             string  `json:"name"`
	PrincipalID      string  `json:"principalId"`
	PrincipalName    string  `json:"principalName"`
	PrincipalType    string  `json:"principalType"`
	RoleDefinitionID string  `json:"roleDefinitionId"`
	RoleName         *string `json:"roleName"`
	Scope            string  `json:"scope"`
	Type             string  `json:"type"`
}

// assignmentTable is az's table of role assignments.
func assignmentTable(v any) any {
	return mapRows(v, func(m map[string]any) row {
		return row{{"Principal", m["principalName"]}, {"RoleName", m["roleName"]}, {"Scope", m["scope"]}}
	})
}

// assignmentsOut returns role assignments as az prints them, with role and
// principal names: role names from the HSM's definitions, principal names
// from the region's principals (if the caller may list them; else
// "Unknown", as az says when it cannot ask the directory).
func (a *app) assignmentsOut(ctx context.Context, c *client.Client, hsmURL string, ras []wire.RoleAssignment) ([]roleAssignmentOut, error) {
	roles := map[string]string{} // lower-case GUID → roleName
	defs, err := c.ListRoleDefinitions(ctx, hsmURL, "/", "")
	if err != nil {
		return nil, err
	}
	for _, d := range defs {
		roles[strings.ToLower(d.Name)] = d.Properties.RoleName
	}
	principals := map[string]string{} // object id → display name
	if ps, err := c.ListPrincipals(ctx); err == nil {
		for _, p := range ps {
			principals[strings.ToLower(p.ObjectID)] = p.DisplayName
		}
	}
	return listOf(ras, func(ra wire.RoleAssignment) roleAssignmentOut {
		o := roleAssignmentOut{ID: ra.ID, Name: ra.Name, PrincipalID: ra.Properties.PrincipalID, RoleDefinitionID: ra.Properties.RoleDefinitionID,
			Scope: ra.Properties.Scope, Type: ra.Type, PrincipalName: "Unknown", PrincipalType: "Unknown"}
		if rn, ok := roles[strings.ToLower(lastSegment(ra.Properties.RoleDefinitionID))]; ok {
			o.RoleName = &rn
		}
		if pn, ok := principals[strings.ToLower(ra.Properties.PrincipalID)]; ok {
			o.PrincipalName, o.PrincipalType = pn, "ServicePrincipal"
		}
		return o
	}), nil
}

var (
	rbacGUIDRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	roleIDRE   = regexp.MustCompile(`(?i)^/?Microsoft\.KeyVault/providers/Microsoft\.Authorization/roleDefinitions/(.+)$`)
)

func newRBACGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// resolveRole turns --role (a full role id, a GUID or a role name) into a
// role id, as az does: names are looked up among the HSM's definitions,
// listed at scope.
func resolveRole(ctx context.Context, c *client.Client, hsmURL, role, scope string) (string, error) {
	if m := roleIDRE.FindStringSubmatch(role); m != nil && rbacGUIDRE.MatchString(m[1]) {
		return client.RoleDefinitionIDPrefix + m[1], nil
	}
	if rbacGUIDRE.MatchString(role) {
		return client.RoleDefinitionIDPrefix + role, nil
	}
	defs, err := c.ListRoleDefinitions(ctx, hsmURL, scope, "")
	if err != nil {
		return "", err
	}
	for _, exact := range []bool{true, false} {
		for _, d := range defs {
			if exact && d.Properties.RoleName == role || !exact && strings.EqualFold(d.Properties.RoleName, role) {
				return d.ID, nil
			}
		}
	}
	// The docs call two built-in roles by shorter names than the service
	// does ("Managed HSM Backup" for "Managed HSM Backup User").
	for _, d := range defs {
		if d.Properties.RoleType == "AKVBuiltInRole" && strings.EqualFold(d.Properties.RoleName, role+" User") {
			return d.ID, nil
		}
	}
	return "", withHint(fmt.Errorf("unknown role %q", role), "list the roles with 'tresor role definition list'")
}

// sameRoleID compares two role ids by their GUIDs.
func sameRoleID(a, b string) bool {
	return strings.EqualFold(lastSegment(a), lastSegment(b))
}

// assigneeFlags are --assignee and --assignee-object-id.
type assigneeFlags struct {
	assignee, objectID string
}

func (f *assigneeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.objectID, "assignee-object-id", "", "the principal's object id")
	cmd.Flags().StringVar(&f.assignee, "assignee", "", "the principal's object id (Tresor has no directory to look other names up in)")
}

// resolve returns the object id the flags name ("" for none).
func (f *assigneeFlags) resolve(cmd *cobra.Command) (string, error) {
	if f.objectID != "" {
		return f.objectID, nil
	}
	if f.assignee != "" && !rbacGUIDRE.MatchString(f.assignee) {
		return "", usagef(cmd, "--assignee %q: give the principal's object id (see 'tresor principal list'), or use --assignee-object-id", f.assignee)
	}
	return f.assignee, nil
}

func (a *app) roleAssignmentCreateCommand() *cobra.Command {
	var (
		h                 hsmTarget
		who               assigneeFlags
		role, scope, name string
		principalType     string
		oid               string
	)
	cmd := a.onHSM(&cobra.Command{
		Use:     "create",
		Short:   "Assign a role to a principal at a scope",
		Example: `  tresor role assignment create --hsm-name ContosoMHSM --role "Managed HSM Crypto User" --assignee-object-id <oid> --scope /keys/mykey`,
	}, &h, nil,
		func(cmd *cobra.Command) (err error) {
			if role == "" {
				return usagef(cmd, "--role is required")
			}
			if oid, err = who.resolve(cmd); err != nil {
				return err
			}
			if oid == "" {
				return usagef(cmd, "give --assignee-object-id (or --assignee)")
			}
			if name == "" {
				name = newRBACGUID()
			}
			return nil
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			rid, err := resolveRole(ctx, c, hsmURL, role, scope)
			if err != nil {
				return nil, err
			}
			ra, err := c.CreateRoleAssignment(ctx, hsmURL, scope, name, rid, oid)
			if err != nil {
				return nil, err
			}
			out, err := a.assignmentsOut(ctx, c, hsmURL, []wire.RoleAssignment{*ra})
			if err != nil {
				return nil, err
			}
			return out[0], nil
		})
	who.add(cmd)
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "role name, GUID or id (required)")
	f.StringVar(&scope, "scope", "/", `scope: "/", "/keys" or "/keys/{key name}"`)
	f.StringVarP(&name, "name", "n", "", "name of the role assignment, a GUID (default: a new one)")
	f.StringVarP(&principalType, "assignee-principal-type", "t", "", "accepted for az compatibility; Tresor does not use it")
	return cmd
}

// matchAssignments lists the assignments at scope (or at "/") that match
// the role and principal, filtering as az does: by role id, by exact scope
// when --scope is given, by principal.
func matchAssignments(ctx context.Context, c *client.Client, hsmURL, scope, role, oid string) ([]wire.RoleAssignment, error) {
	all, err := c.ListRoleAssignments(ctx, hsmURL, scope, "")
	if err != nil {
		return nil, err
	}
	var rid string
	if role != "" {
		if rid, err = resolveRole(ctx, c, hsmURL, role, scope); err != nil {
			return nil, err
		}
	}
	out := []wire.RoleAssignment{}
	for _, ra := range all {
		if rid != "" && !sameRoleID(ra.Properties.RoleDefinitionID, rid) {
			continue
		}
		if scope != "" && ra.Properties.Scope != scope && ra.Properties.Scope != "/"+scope {
			continue
		}
		if oid != "" && !strings.EqualFold(ra.Properties.PrincipalID, oid) {
			continue
		}
		out = append(out, ra)
	}
	return out, nil
}

func (a *app) roleAssignmentListCommand() *cobra.Command {
	var (
		h           hsmTarget
		who         assigneeFlags
		role, scope string
		oid         string
	)
	cmd := a.onHSM(&cobra.Command{
		Use:   "list",
		Short: "List role assignments",
	}, &h, assignmentTable,
		func(cmd *cobra.Command) (err error) {
			oid, err = who.resolve(cmd)
			return err
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			ras, err := matchAssignments(ctx, c, hsmURL, scope, role, oid)
			if err != nil {
				return nil, err
			}
			return a.assignmentsOut(ctx, c, hsmURL, ras)
		})
	who.add(cmd)
	cmd.Flags().StringVar(&role, "role", "", "only assignments of this role (name, GUID or id)")
	cmd.Flags().StringVar(&scope, "scope", "", `only assignments at exactly this scope: "/", "/keys" or "/keys/{key name}"`)
	return cmd
}

func (a *app) roleAssignmentDeleteCommand() *cobra.Command {
	var (
		h                 hsmTarget
		who               assigneeFlags
		role, scope, name string
		ids               []string
		oid               string
	)
	cmd := a.onHSM(&cobra.Command{
		Use:   "delete",
		Short: "Delete role assignments (by --name, by --ids, or all that match --role and --assignee-object-id)",
	}, &h, nil,
		func(cmd *cobra.Command) (err error) {
			if oid, err = who.resolve(cmd); err != nil {
				return err
			}
			if len(ids) == 0 && name == "" && role == "" && oid == "" {
				return usagef(cmd, "give --ids, --name, or --role and/or --assignee-object-id to say which assignments to delete")
			}
			return nil
		},
		func(ctx context.Context, c *client.Client, hsmURL string) (any, error) {
			var targets []string
			switch {
			case len(ids) > 0:
				targets = listOf(ids, lastSegment)
			case name != "":
				targets = []string{name}
			default:
				ras, err := matchAssignments(ctx, c, hsmURL, scope, role, oid)
				if err != nil {
					return nil, err
				}
				targets = listOf(ras, func(ra wire.RoleAssignment) string { return ra.Name })
			}
			var deleted []wire.RoleAssignment
			for _, t := range targets {
				ra, err := c.DeleteRoleAssignment(ctx, hsmURL, scope, t)
				if err != nil {
					return nil, err
				}
				deleted = append(deleted, *ra)
			}
			return a.assignmentsOut(ctx, c, hsmURL, deleted)
		})
	who.add(cmd)
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "delete the assignments of this role (name, GUID or id)")
	f.StringVar(&scope, "scope", "", `scope of the assignments: "/", "/keys" or "/keys/{key name}" (default: any)`)
	f.StringVarP(&name, "name", "n", "", "name of the role assignment")
	f.StringSliceVar(&ids, "ids", nil, "space-separated role assignment ids")
	markNargs(f, "ids")
	return cmd
}
