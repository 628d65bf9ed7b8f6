"""Builds the real call session for each new media stream from the settings and the process's providers."""

from __future__ import annotations

from dataclasses import replace

from dialogue.config import CallDeps, SessionConfig
from dialogue.events import EventSink
from dialogue.prompts import system_prompt
from dialogue.session import CallSession
from media.errors import ConfigError
from media.privacy import caller_hash
from media.recording import StereoRecorder, recording_path
from media.streaming_stt import BufferedSTT
from media.transport import CallControl, CallTransport, StreamStart
from media.turns import TurnConfig
from web.consent import PROMPT_NOTE, ConsentWatch
from web.context import NOTE_CALLER, AppContext, SessionFactory
from web.keys import instance_secret
from web.settings import Settings
from web.stt_prewarm import SttPrewarm


def session_config_from_settings(settings: Settings) -> SessionConfig:
    """Every knob of a call from the settings, in one place. Stage deadlines are not here: the adapters own
    them (``web.providers`` passes the same settings), and a call only catches their errors."""
    turn = replace(
        TurnConfig(),
        end_of_turn_silence_ms=settings.end_of_turn_silence_ms,
        preroll_ms=settings.preroll_ms,
        min_utterance_ms=settings.min_utterance_ms,
        max_utterance_ms=settings.max_utterance_ms,
        barge_in_ms=settings.barge_in_ms,
        eager_eot_ms=settings.eager_eot_ms,
        end_of_turn_complete_ms=settings.end_of_turn_complete_ms,
        end_of_turn_statement_ms=settings.end_of_turn_statement_ms,
        end_of_turn_unsure_ms=settings.end_of_turn_unsure_ms,
        end_of_turn_hold_ms=settings.end_of_turn_hold_ms,
        continue_within_ms=settings.continue_within_ms,
        vad_aggressiveness=settings.vad_aggressiveness,
    )
    return SessionConfig(
        turn=turn,
        playout_lead_ms=settings.playout_lead_ms,
        reprompt_after_s=settings.reprompt_after_s,
        max_reprompts=settings.max_reprompts,
        max_call_duration_s=settings.max_call_duration_s,
        dtmf_actions=settings.dtmf_action_map,
        transfer_number=settings.transfer_number,
        failures_before_handover=settings.provider_failures_before_handover,
        history_token_budget=settings.history_token_budget,
        speculative_stt=settings.eager_eot_ms > 0,
        preemptive_reply=settings.preemptive_reply,
        first_clause_words=settings.first_clause_words,
    )


def real_session_factory(ctx: AppContext) -> SessionFactory:
    """One CallDeps for the whole process (clients stay warm); one session, recorder and machine per call."""
    providers = ctx.providers
    if providers.stt is None or providers.llm is None or providers.tts is None or providers.catalogue is None:
        raise ConfigError("cannot hold calls: " + ", ".join(ctx.not_ready_reasons()))
    profile = providers.profile
    company = profile.company_name if profile is not None else "unserem Unternehmen"
    transfer = ctx.settings.transfer_number or (profile.transfer_number if profile is not None else "")
    config = replace(session_config_from_settings(ctx.settings), transfer_number=transfer)
    deps = CallDeps(
        stt=providers.stt,
        llm=providers.llm,
        tts=providers.tts,
        lines=providers.catalogue,
        system_prompt=system_prompt(company, profile.facts() if profile is not None else "")
        + (f"\n\n{PROMPT_NOTE}" if ctx.settings.record_calls else ""),
        cached_audio=providers.cached_phrase,
        backup_tts=providers.backup_tts,
    )
    settings = ctx.settings
    recordings = settings.data_dir / "recordings"
    caller_key = instance_secret(settings)

    prewarm = SttPrewarm.of(ctx)
    engine = providers.streaming_stt
    if prewarm is not None:  # a streaming engine: the call takes the socket /voice opened while it rang
        deps = replace(deps, open_transcriber=prewarm.take)
    elif engine is not None and not isinstance(engine, BufferedSTT):
        deps = replace(deps, open_transcriber=engine.open_call)
    # Batch engines (BufferedSTT) keep the speculative upload of the whole utterance: no transcriber.

    def factory(transport: CallTransport, control: CallControl, start: StreamStart) -> CallSession:
        note_caller = ctx.extras.get(NOTE_CALLER)
        if callable(note_caller):
            note_caller(start.call_sid, caller_hash(caller_key, start.custom_parameters.get("caller", "")))
        recorder: StereoRecorder | None = None
        sink: EventSink = ctx.sink
        if settings.record_calls:  # off: no recorder exists, nothing of the voice is kept
            recorder = StereoRecorder(recording_path(recordings, start.call_sid))
            sink = ConsentWatch(
                ctx.sink,
                recorder,
                call_sid=start.call_sid,
                phrases=settings.objection_phrases,
                digit=settings.recording_objection_digit,
            )
        return CallSession(
            start=start,
            transport=transport,
            control=control,
            deps=deps,
            config=config,
            sink=sink,
            recorder=recorder,
        )

    return factory
