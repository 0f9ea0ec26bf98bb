{{/* Name of every namespaced object and of the cluster-scoped RBAC objects. */}}
{{- define "coco-operator.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "coco-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "coco-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "coco-operator.selectorLabels" -}}
app.kubernetes.io/name: coco-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "coco-operator.labels" -}}
{{ include "coco-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Rules for the Datasources of one namespace (or of all, in a ClusterRole). Shared by rbac.yaml. */}}
{{- define "coco-operator.datasourceRules" -}}
# kopf lists and watches Datasources, and patches them for its finalizer (coco.rs/cleanup) and annotations.
- apiGroups: [coco.rs]
  resources: [datasources]
  verbs: [list, watch, patch]
# The dispatcher writes each Datasource's status.
- apiGroups: [coco.rs]
  resources: [datasources/status]
  verbs: [patch]
# Confluence tokens: read by name (tokenSecretRef) when a run starts; never listed or watched.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# A private CA bundle may come from a ConfigMap (caBundleConfigMapRef): read by name, never listed.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
# Events on Datasources (kubectl describe / kubectl events).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if eq .Values.runMode "Job" }}
# Job mode: each namespace's own Meilisearch key lives in a Secret the operator creates and replaces; it never reads,
# changes or deletes any other Secret beyond the `get` above.
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [coco-operator-meili-key]
  verbs: [patch, delete]
# Job mode: a run is a Job the operator starts, polls and stops; it reads the status the Job wrote.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [create, get, delete]
- apiGroups: [coco.rs]
  resources: [datasources]
  verbs: [get]
# Jobs are owned by their Datasource with blockOwnerDeletion, which the OwnerReferencesPermissionEnforcement
# admission plugin (on in many distributions) only allows to who may update the owner's finalizers.
- apiGroups: [coco.rs]
  resources: [datasources/finalizers]
  verbs: [update]
{{- end }}
{{- end -}}

{{/* What a sync Job's pod does (runMode: Job): read its Datasource, write its status. */}}
{{- define "coco-operator.syncRules" -}}
- apiGroups: [coco.rs]
  resources: [datasources]
  verbs: [get]
- apiGroups: [coco.rs]
  resources: [datasources/status]
  verbs: [patch]
{{- end -}}

{{/* Rules for cluster-scoped objects, needed in both modes. */}}
{{- define "coco-operator.clusterRules" -}}
# kopf discovers the CRDs at startup and watches them for changes.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
# Connectors are cluster-scoped: kopf watches them; the dispatcher reads the one a Datasource names and writes
# each Connector's status (how many Datasources use it). kopf adds no finalizer or annotation to them.
- apiGroups: [coco.rs]
  resources: [connectors]
  verbs: [get, list, watch]
{{- if .Values.builtinConnector }}
# The operator creates the builtin `confluence` Connector at startup when it is missing (never updates or deletes it).
- apiGroups: [coco.rs]
  resources: [connectors]
  verbs: [create]
{{- end }}
- apiGroups: [coco.rs]
  resources: [connectors/status]
  verbs: [patch]
{{- end -}}

{{/* The shared indexes, comma-separated: the default index (tenancy.shareDefaultIndex) and tenancy.sharedIndexes.
"," stands for none (an empty value would be dropped by the API server and re-applied forever). */}}
{{- define "coco-operator.sharedIndexes" -}}
{{- $shared := list -}}
{{- if .Values.tenancy.shareDefaultIndex }}{{ $shared = append $shared .Values.meilisearch.index }}{{ end -}}
{{- $shared = concat $shared .Values.tenancy.sharedIndexes | uniq -}}
{{- if $shared }}{{ join "," $shared }}{{ else }},{{ end -}}
{{- end -}}

{{/* The environment variable that carries an embedder profile's API key. */}}
{{- define "coco-operator.embedderKeyEnv" -}}
COCO_EMBEDDER_KEY_{{ . | upper | replace "-" "_" }}
{{- end -}}
