package cli

import (
	"reflect"
	"testing"
)

func TestExpandArgs(t *testing.T) {
	root := (&app{}).rootCommand()
	tests := map[string]struct {
		args, want []string
	}{
		"nargs space-separated": {
			args: []string{"create", "--hsm-name", "h", "--administrators", "a", "b", "c", "-g", "rg"},
			want: []string{"create", "--hsm-name", "h", "--administrators=a", "--administrators=b", "--administrators=c", "-g", "rg"},
		},
		"nargs repeated and inline": {
			args: []string{"create", "--administrators=a", "b", "--administrators", "c"},
			want: []string{"create", "--administrators=a", "--administrators=b", "--administrators=c"},
		},
		"tags with equals and empty": {
			args: []string{"update", "--tags", "k=v", "x=y=z", "", "--hsm-name", "h"},
			want: []string{"update", "--tags=k=v", "--tags=x=y=z", "--tags=", "--hsm-name", "h"},
		},
		"nargs at the end without value left to pflag": {
			args: []string{"create", "--administrators"},
			want: []string{"create", "--administrators"},
		},
		"optional bool with value": {
			args: []string{"update-hsm", "--enable-purge-protection", "True", "--hsm-name", "h"},
			want: []string{"update-hsm", "--enable-purge-protection=true", "--hsm-name", "h"},
		},
		"optional bool alone": {
			args: []string{"create", "--enable-purge-protection", "--hsm-name", "h"},
			want: []string{"create", "--enable-purge-protection", "--hsm-name", "h"},
		},
		"value of another flag is not taken for a value list": {
			args: []string{"create", "--hsm-name", "--tags", "--tags", "a=b"},
			want: []string{"create", "--hsm-name", "--tags", "--tags=a=b"},
		},
		"global flags before the command": {
			args: []string{"-o", "table", "create", "--administrators", "a", "b"},
			want: []string{"-o", "table", "create", "--administrators=a", "--administrators=b"},
		},
		"after double dash untouched": {
			args: []string{"create", "--", "--administrators", "a", "b"},
			want: []string{"create", "--", "--administrators", "a", "b"},
		},
		"other commands untouched": {
			args: []string{"principal", "create", "--display-name", "x"},
			want: []string{"principal", "create", "--display-name", "x"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := expandArgs(root, tc.args); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("expandArgs(%q)\n got %q\nwant %q", tc.args, got, tc.want)
			}
		})
	}
}

func TestParseTags(t *testing.T) {
	tests := map[string]struct {
		args    []string
		want    map[string]string
		wantErr bool
	}{
		"none":         {args: nil, want: nil},
		"pairs":        {args: []string{"a=1", "b=x=y", "c"}, want: map[string]string{"a": "1", "b": "x=y", "c": ""}},
		"empty clears": {args: []string{""}, want: map[string]string{}},
		"missing key":  {args: []string{"=v"}, wantErr: true},
		"later wins":   {args: []string{"a=1", "a=2"}, want: map[string]string{"a": "2"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseTags(tc.args)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
