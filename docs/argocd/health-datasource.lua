-- Argo CD health check for coco.rs/v1alpha1 Datasource.
-- Install as resource.customizations.health.coco.rs_Datasource in argocd-cm (see docs/argocd-health.md).
-- Only the Lua base and table libraries are used: Argo CD runs custom health checks without the string library.
local hs = {}

local function condition(status, kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

-- "Reason: message", or whichever of the two is set.
local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= "" then
    return message
  end
  return reason
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local status = obj.status

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Deleting: the operator is removing this Datasource's documents from the index"
  return hs
end

if status == nil or status.observedGeneration == nil
    or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  else
    hs.message = "Waiting for the operator to observe this Datasource"
  end
  return hs
end

local reconciling = condition(status, "Reconciling")
local ready_now = condition(status, "Ready")
if reconciling ~= nil and reconciling.status == "True" and reconciling.reason == "ProgressingWithRetry"
    and ready_now ~= nil and ready_now.status == "False" then
  -- A failed run the operator retries by itself: show the failure, not mere progress.
  hs.status = "Degraded"
  hs.message = describe(ready_now)
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = reconciling.message or reconciling.reason or "Reconciling"
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local ready = condition(status, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to set the Ready condition"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ready.reason or "Ready"
  return hs
end

if ready.status == "False" then
  if ready.reason == "Suspended" or ready.reason == "Disabled" or ready.reason == "ConnectorDisabled" then
    hs.status = "Suspended"
  else
    -- Retryable failures are retried with backoff, but Argo CD should still show them.
    hs.status = "Degraded"
  end
  hs.message = describe(ready)
  return hs
end

hs.status = "Progressing"
hs.message = ready.message or ready.reason or "Waiting for the first sync"
return hs
