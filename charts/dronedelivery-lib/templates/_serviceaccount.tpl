{{/*
The service's own ServiceAccount (never `default`). With workload identity the AKS webhook injects
AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE (and the projected token) into pods
labelled `azure.workload.identity/use: "true"` whose ServiceAccount carries the client-id
annotation. The managed identity needs a federated credential for
`system:serviceaccount:<namespace>:<service>`.
*/}}
{{- define "dronedelivery-lib.serviceaccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "dronedelivery-lib.name" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "dronedelivery-lib.labels" . | nindent 4 }}
  {{- if .Values.workloadIdentity.enabled }}
  annotations:
    azure.workload.identity/client-id: {{ .Values.workloadIdentity.clientId | quote }}
  {{- end }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
{{- end -}}
