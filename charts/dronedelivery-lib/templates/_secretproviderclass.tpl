{{/*
SecretProviderClass (Secrets Store CSI driver, Azure Key Vault provider). The driver reads the listed
Key Vault secrets as the service's workload identity (`clientID`), mounts them as files under
/mnt/secrets-store and syncs them to the Secret `<service>-kv` while a pod mounts the volume; the
Deployment reads each one into its `env` variable with a secretKeyRef. No secret value ever
appears in values or in the rendered chart. The identity needs "Key Vault Secrets User" on the vault.
*/}}
{{- define "dronedelivery-lib.secretproviderclass" -}}
{{- $kv := .Values.keyVault -}}
{{- if $kv.enabled -}}
{{- $name := include "dronedelivery-lib.keyVaultName" . -}}
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "dronedelivery-lib.labels" . | nindent 4 }}
spec:
  provider: azure
  parameters:
    usePodIdentity: "false"
    clientID: {{ .Values.workloadIdentity.clientId | quote }}
    keyvaultName: {{ $kv.name | quote }}
    tenantId: {{ .Values.azure.tenantId | quote }}
    {{- with $kv.cloudName }}
    cloudName: {{ . | quote }}
    {{- end }}
    objects: |
      array:
        {{- range $kv.secrets }}
        - |
          objectName: {{ .objectName }}
          objectType: secret
          objectAlias: {{ .env }}
        {{- end }}
  secretObjects:
    - secretName: {{ $name }}
      type: Opaque
      labels:
        {{- include "dronedelivery-lib.selectorLabels" . | nindent 8 }}
      data:
        {{- range $kv.secrets }}
        - objectName: {{ .env }}
          key: {{ .env }}
        {{- end }}
{{- end -}}
{{- end -}}
