package wire

// Local RBAC and settings of a managed HSM (spec §5): the shapes of
// …/providers/Microsoft.Authorization/roleDefinitions and roleAssignments,
// and of /settings.

// RoleDefinition is a role definition (spec §5.2).
type RoleDefinition struct {
	ID         string                   `json:"id"`
	Name       string                   `json:"name"` // the role's GUID
	Type       string                   `json:"type"` // Microsoft.Authorization/roleDefinitions
	Properties RoleDefinitionProperties `json:"properties"`
}

// RoleDefinitionProperties are a role definition's properties; they are
// also the body of PUT …/roleDefinitions/{name} (as its "properties").
type RoleDefinitionProperties struct {
	RoleName         string       `json:"roleName"`
	Description      string       `json:"description"`
	RoleType         string       `json:"type"` // AKVBuiltInRole or CustomRole
	Permissions      []Permission `json:"permissions"`
	AssignableScopes []string     `json:"assignableScopes,omitempty"`
}

// Permission lists the (data) actions a role grants and excludes.
type Permission struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

// RoleDefinitionList is the answer of GET …/roleDefinitions.
type RoleDefinitionList struct {
	Value []RoleDefinition `json:"value"`
}

// RoleDefinitionCreate is the body of PUT …/roleDefinitions/{name}; a nil
// Properties tells an absent "properties" from an empty one.
type RoleDefinitionCreate struct {
	Properties *RoleDefinitionProperties `json:"properties"`
}

// RoleAssignment is a role assignment (spec §5.2).
type RoleAssignment struct {
	ID         string                   `json:"id"`
	Name       string                   `json:"name"`
	Type       string                   `json:"type"` // Microsoft.Authorization/roleAssignments
	Properties RoleAssignmentProperties `json:"properties"`
}

// RoleAssignmentProperties are a role assignment's properties.
type RoleAssignmentProperties struct {
	Scope            string `json:"scope"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	PrincipalID      string `json:"principalId"`
}

// RoleAssignmentList is the answer of GET …/roleAssignments.
type RoleAssignmentList struct {
	Value []RoleAssignment `json:"value"`
}

// RoleAssignmentCreate is the body of PUT …/roleAssignments/{name}; a nil
// Properties tells an absent "properties" from an empty one.
type RoleAssignmentCreate struct {
	Properties *RoleAssignmentCreateProperties `json:"properties"`
}

// RoleAssignmentCreateProperties name the role (its id, or its GUID) and
// the principal (object id) of a new role assignment.
type RoleAssignmentCreateProperties struct {
	RoleDefinitionID string `json:"roleDefinitionId"`
	PrincipalID      string `json:"principalId"`
}

// Setting is an HSM setting (spec §5.4).
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Type  string `json:"type"`
}

// SettingsList is the answer of GET /settings.
type SettingsList struct {
	Settings []Setting `json:"settings"`
}

// SettingUpdate is the body of PATCH /settings/{name}; a nil Value tells
// an absent "value" from an empty one.
type SettingUpdate struct {
	Value *string `json:"value"`
}
