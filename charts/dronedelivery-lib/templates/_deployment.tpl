{{/*
The service's Deployment.

- Probes: startup and liveness on `/healthz` (no I/O: a slow dependency never restarts the pod),
  readiness on `/readyz` (dependencies checked; Application Gateway for Containers also uses it as
  its health probe when no HealthCheckPolicy exists).
- Graceful termination: the preStop sleep keeps the pod serving while endpoints and the gateway
  stop sending to it; then SIGTERM starts uvicorn's graceful shutdown (20 s, see
  dronecommon.server) or the workflow's drain (`WORKFLOW_SHUTDOWN_GRACE`). The grace period covers
  both, plus a margin.
- Security: the Pod Security Standard "restricted" profile, hard-coded (not values): non-root uid and
  gid 10001 (the images' USER), read-only root filesystem with an emptyDir on /tmp, no privilege
  escalation, every capability dropped, the runtime's default seccomp profile, no Kubernetes API
  token unless serviceAccount.automountToken says so (workload identity projects its own token).
- No `replicas` when an HPA or KEDA owns the count, so an upgrade never resets a scaled-out service
  (except after a hand-over from a fixed count: see "dronedelivery-lib.replicas").
*/}}
{{- define "dronedelivery-lib.deployment" -}}
{{- $name := include "dronedelivery-lib.name" . -}}
{{- $prefix := include "dronedelivery-lib.envPrefix" . -}}
{{- $v := .Values -}}
{{- $replicas := include "dronedelivery-lib.replicas" . -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "dronedelivery-lib.labels" . | nindent 4 }}
  {{- with $replicas }}
  annotations:
    dronedelivery/replicas-in-manifest: "true"
  {{- end }}
spec:
  {{- with $replicas }}
  replicas: {{ . }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "dronedelivery-lib.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: {{ $v.rollingUpdate.maxSurge }}
      maxUnavailable: {{ $v.rollingUpdate.maxUnavailable }}
  template:
    metadata:
      labels:
        {{- include "dronedelivery-lib.labels" . | nindent 8 }}
        {{- if $v.workloadIdentity.enabled }}
        azure.workload.identity/use: "true"
        {{- end }}
      {{- with $v.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ $name }}
      automountServiceAccountToken: {{ $v.serviceAccount.automountToken }}
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $v.lifecycle.terminationGracePeriodSeconds }}
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        fsGroupChangePolicy: OnRootMismatch
        seccompProfile:
          type: RuntimeDefault
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      topologySpreadConstraints:
        - topologyKey: topology.kubernetes.io/zone
          maxSkew: {{ $v.topologySpread.zone.maxSkew }}
          whenUnsatisfiable: {{ $v.topologySpread.zone.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "dronedelivery-lib.selectorLabels" . | nindent 14 }}
          matchLabelKeys: [pod-template-hash]
        - topologyKey: kubernetes.io/hostname
          maxSkew: {{ $v.topologySpread.hostname.maxSkew }}
          whenUnsatisfiable: {{ $v.topologySpread.hostname.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "dronedelivery-lib.selectorLabels" . | nindent 14 }}
          matchLabelKeys: [pod-template-hash]
      containers:
        - name: {{ $name }}
          image: {{ include "dronedelivery-lib.image" . | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
          env:
            - name: {{ $prefix }}_HOST
              value: "0.0.0.0"
            - name: {{ $prefix }}_PORT
              value: "8080"
            {{- range $key, $value := $v.env }}
            - name: {{ $key }}
              value: {{ tpl (toString $value) $ | quote }}
            {{- end }}
            {{- if $v.keyVault.enabled }}
            {{- range $v.keyVault.secrets }}
            - name: {{ .env }}
              valueFrom:
                secretKeyRef:
                  name: {{ include "dronedelivery-lib.keyVaultName" $ }}
                  key: {{ .env }}
            {{- end }}
            {{- end }}
          {{- with $v.envFrom }}
          envFrom:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $v.probes.startup.periodSeconds }}
            timeoutSeconds: {{ $v.probes.startup.timeoutSeconds }}
            failureThreshold: {{ $v.probes.startup.failureThreshold }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $v.probes.liveness.periodSeconds }}
            timeoutSeconds: {{ $v.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ $v.probes.liveness.failureThreshold }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: {{ $v.probes.readiness.periodSeconds }}
            timeoutSeconds: {{ $v.probes.readiness.timeoutSeconds }}
            failureThreshold: {{ $v.probes.readiness.failureThreshold }}
          {{- if gt (int $v.lifecycle.preStopSleepSeconds) 0 }}
          lifecycle:
            preStop:
              sleep:
                seconds: {{ $v.lifecycle.preStopSleepSeconds }}
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            runAsNonRoot: true
            runAsUser: 10001
            runAsGroup: 10001
            privileged: false
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: [ALL]
            seccompProfile:
              type: RuntimeDefault
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $v.keyVault.enabled }}
            - name: secrets-store
              mountPath: /mnt/secrets-store
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $v.tmpSizeLimit }}
        {{- if $v.keyVault.enabled }}
        - name: secrets-store
          csi:
            driver: secrets-store.csi.k8s.io
            readOnly: true
            volumeAttributes:
              secretProviderClass: {{ include "dronedelivery-lib.keyVaultName" . }}
        {{- end }}
{{- end -}}
