{{- define "grove.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "grove.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "grove.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "grove.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "grove.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The label a pod carries to reach the client port when networkPolicy.allowExternal is false. */}}
{{- define "grove.clientLabel" -}}{{ include "grove.fullname" . }}-client{{- end -}}

{{/* The client Service's DNS name, and the name its certificate is expected to carry. */}}
{{- define "grove.clientServiceHost" -}}
{{ include "grove.fullname" . }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
{{- end -}}
{{- define "grove.clientTlsServerName" -}}
{{ include "grove.fullname" . }}.{{ .Release.Namespace }}.svc
{{- end -}}

{{/* The Secret holding the peer secret: the given one, or the chart's own. */}}
{{- define "grove.peerSecretName" -}}
{{- .Values.auth.peerSecret.secretName | default (printf "%s-peer-secret" (include "grove.fullname" .)) -}}
{{- end -}}

{{- define "grove.peersService" -}}{{ include "grove.fullname" . }}-peers{{- end -}}
{{- define "grove.observersName" -}}{{ include "grove.fullname" . }}-obs{{- end -}}

{{- define "grove.selectorLabels" -}}
app.kubernetes.io/name: {{ include "grove.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "grove.labels" -}}
{{ include "grove.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "grove.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* DNS name of pod `prefix-i` behind the headless peers Service. */}}
{{- define "grove.podHost" -}}
{{- $root := index . 0 -}}{{- $prefix := index . 1 -}}{{- $i := index . 2 -}}
{{ $prefix }}-{{ $i }}.{{ include "grove.peersService" $root }}.{{ $root.Release.Namespace }}.svc.{{ $root.Values.clusterDomain }}
{{- end -}}

{{/* The voters: 1=<pod-0 DNS>:peer,2=<pod-1 DNS>:peer,... built from replicaCount. */}}
{{- define "grove.peers" -}}
{{- $root := . -}}
{{- $list := list -}}
{{- range $i := until (int .Values.replicaCount) -}}
{{- $list = append $list (printf "%d=%s:%d" (add1 $i) (include "grove.podHost" (list $root (include "grove.fullname" $root) $i)) (int $root.Values.ports.peer)) -}}
{{- end -}}
{{- join "," $list -}}
{{- end -}}

{{/* The observers: ids after every voter id (observers.idOffset). */}}
{{- define "grove.observers" -}}
{{- $root := . -}}
{{- $list := list -}}
{{- range $i := until (int .Values.observers.count) -}}
{{- $list = append $list (printf "%d=%s:%d" (add (int $root.Values.observers.idOffset) $i 1) (include "grove.podHost" (list $root (include "grove.observersName" $root) $i)) (int $root.Values.ports.peer)) -}}
{{- end -}}
{{- join "," $list -}}
{{- end -}}

{{/* Whether pods of this role keep their data on persistence.existingClaim (voters only). */}}
{{- define "grove.usesExistingClaim" -}}
{{- $root := index . 0 -}}{{- $role := index . 1 -}}
{{- if and $root.Values.persistence.enabled $root.Values.persistence.existingClaim (eq $role "voter") -}}true{{- end -}}
{{- end -}}

{{/* One pod template for voters (role=voter) and observers (role=observer). */}}
{{- define "grove.podTemplate" -}}
{{- $root := index . 0 -}}{{- $role := index . 1 -}}
{{- $existingClaim := include "grove.usesExistingClaim" (list $root $role) -}}
metadata:
  labels:
    {{- include "grove.selectorLabels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $role }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $root.Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  serviceAccountName: {{ include "grove.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
  {{- with $root.Values.priorityClassName }}
  priorityClassName: {{ . | quote }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
  {{- if $root.Values.affinity }}
  affinity:
    {{- toYaml $root.Values.affinity | nindent 4 }}
  {{- else if ne $root.Values.podAntiAffinity "none" }}
  affinity:
    podAntiAffinity:
      {{- if eq $root.Values.podAntiAffinity "hard" }}
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "grove.selectorLabels" $root | nindent 14 }}
      {{- else }}
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector:
              matchLabels:
                {{- include "grove.selectorLabels" $root | nindent 16 }}
      {{- end }}
  {{- end }}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.initContainers }}
  initContainers:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: groved
      image: {{ include "grove.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        - --id-from-hostname
        {{- if eq $role "observer" }}
        - --id-offset={{ $root.Values.observers.idOffset }}
        {{- else }}
        # A pod added by scaling up finds the ensemble formed without it and asks the leader
        # to add it; on a first install the voters form the ensemble together.
        - --auto-join
        {{- end }}
        - --data-dir=/var/lib/grove
        - --listen=0.0.0.0:{{ $root.Values.ports.client }}
        - --peer-listen=0.0.0.0:{{ $root.Values.ports.peer }}
        - --admin-listen=0.0.0.0:{{ $root.Values.ports.admin }}
        - --advertise=$(POD_NAME).{{ include "grove.peersService" $root }}.$(POD_NAMESPACE).svc.{{ $root.Values.clusterDomain }}:{{ $root.Values.ports.client }}
        - --advertise-peer=$(POD_NAME).{{ include "grove.peersService" $root }}.$(POD_NAMESPACE).svc.{{ $root.Values.clusterDomain }}:{{ $root.Values.ports.peer }}
        {{- with $root.Values.tls.client }}
        {{- if .enabled }}
        - --tls-cert=/etc/grove/tls/client/tls.crt
        - --tls-key=/etc/grove/tls/client/tls.key
        {{- if or .verifyClientCerts .requireClientCert }}
        - --tls-client-ca=/etc/grove/tls/client/ca.crt
        {{- end }}
        {{- if .requireClientCert }}
        - --tls-require-client-cert
        {{- end }}
        - --health-listen=0.0.0.0:{{ $root.Values.ports.health }}
        {{- end }}
        {{- end }}
        {{- if $root.Values.tls.peer.enabled }}
        - --peer-tls-cert=/etc/grove/tls/peer/tls.crt
        - --peer-tls-key=/etc/grove/tls/peer/tls.key
        - --peer-tls-ca=/etc/grove/tls/peer/ca.crt
        {{- end }}
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        {{- if or (gt (int $root.Values.replicaCount) 1) (gt (int $root.Values.observers.count) 0) }}
        - name: GROVE_PEERS
          value: {{ include "grove.peers" $root | quote }}
        {{- end }}
        {{- if gt (int $root.Values.observers.count) 0 }}
        - name: GROVE_OBSERVERS
          value: {{ include "grove.observers" $root | quote }}
        {{- end }}
        - name: GROVE_MIN_SESSION_TIMEOUT_MS
          value: {{ $root.Values.config.minSessionTimeoutMs | quote }}
        - name: GROVE_MAX_SESSION_TIMEOUT_MS
          value: {{ $root.Values.config.maxSessionTimeoutMs | quote }}
        - name: GROVE_SNAPSHOT_ENTRIES
          value: {{ $root.Values.config.snapshotEntries | quote }}
        - name: GROVE_LOG_FORMAT
          value: {{ $root.Values.config.logFormat | quote }}
        {{- if not $root.Values.tls.peer.enabled }}
        - name: GROVE_PEER_SECRET
          valueFrom:
            secretKeyRef:
              name: {{ include "grove.peerSecretName" $root | quote }}
              key: {{ $root.Values.auth.peerSecret.key | quote }}
        {{- end }}
        {{- with $root.Values.auth.superDigest }}
        {{- if .secretName }}
        - name: GROVE_SUPER_DIGEST
          valueFrom:
            secretKeyRef:
              name: {{ .secretName | quote }}
              key: {{ .key | quote }}
        {{- end }}
        {{- end }}
        {{- with $root.Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $root.Values.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - name: client
          containerPort: {{ $root.Values.ports.client }}
        - name: peer
          containerPort: {{ $root.Values.ports.peer }}
        - name: admin
          containerPort: {{ $root.Values.ports.admin }}
        {{- if $root.Values.tls.client.enabled }}
        - name: health
          containerPort: {{ $root.Values.ports.health }}
        {{- end }}
      # The health service's overall status is SERVING once the server knows a leader and
      # has caught up; the per-service status is SERVING while the process serves. Kubelet's
      # gRPC probes cannot speak TLS: with client TLS on they use the plaintext health port.
      {{- $probePort := ternary $root.Values.ports.health $root.Values.ports.client $root.Values.tls.client.enabled }}
      readinessProbe:
        grpc:
          port: {{ $probePort }}
          service: ""
        periodSeconds: {{ $root.Values.probes.readiness.periodSeconds }}
        failureThreshold: {{ $root.Values.probes.readiness.failureThreshold }}
      livenessProbe:
        grpc:
          port: {{ $probePort }}
          service: grove.v1.Nodes
        initialDelaySeconds: {{ $root.Values.probes.liveness.initialDelaySeconds }}
        periodSeconds: {{ $root.Values.probes.liveness.periodSeconds }}
        failureThreshold: {{ $root.Values.probes.liveness.failureThreshold }}
      resources:
        {{- toYaml $root.Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: data
          mountPath: /var/lib/grove
        {{- if $root.Values.tls.client.enabled }}
        - name: tls-client
          mountPath: /etc/grove/tls/client
          readOnly: true
        {{- end }}
        {{- if $root.Values.tls.peer.enabled }}
        - name: tls-peer
          mountPath: /etc/grove/tls/peer
          readOnly: true
        {{- end }}
        {{- with $root.Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- with $root.Values.sidecars }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if or (not $root.Values.persistence.enabled) $existingClaim $root.Values.tls.client.enabled $root.Values.tls.peer.enabled $root.Values.extraVolumes }}
  volumes:
    {{- if not $root.Values.persistence.enabled }}
    - name: data
      emptyDir: {}
    {{- else if $existingClaim }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ $root.Values.persistence.existingClaim | quote }}
    {{- end }}
    {{- if $root.Values.tls.client.enabled }}
    - name: tls-client
      secret:
        secretName: {{ $root.Values.tls.client.secretName }}
    {{- end }}
    {{- if $root.Values.tls.peer.enabled }}
    - name: tls-peer
      secret:
        secretName: {{ $root.Values.tls.peer.secretName }}
    {{- end }}
    {{- with $root.Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
{{- end -}}

{{/* Called with (list $ role): voters on persistence.existingClaim get no claim template. */}}
{{- define "grove.claimTemplates" -}}
{{- $root := index . 0 -}}{{- $role := index . 1 -}}
{{- with $root }}
{{- if and .Values.persistence.enabled (not (include "grove.usesExistingClaim" (list . $role))) }}
volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes:
        {{- toYaml .Values.persistence.accessModes | nindent 8 }}
      {{- if .Values.persistence.storageClass }}
      storageClassName: {{ .Values.persistence.storageClass | quote }}
      {{- end }}
      resources:
        requests:
          storage: {{ .Values.persistence.size }}
{{- end }}
{{- end }}
{{- end -}}
