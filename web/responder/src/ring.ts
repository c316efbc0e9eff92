// The offer rings and vibrates until it is answered or withdrawn.
let audio: AudioContext | null = null;
let timer: ReturnType<typeof setInterval> | undefined;

function beep(): void {
  try {
    audio ??= new AudioContext();
    const oscillator = audio.createOscillator();
    const gain = audio.createGain();
    oscillator.frequency.value = 960;
    gain.gain.setValueAtTime(0.25, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.5);
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start();
    oscillator.stop(audio.currentTime + 0.5);
  } catch {
    // No audio: the dialog and the vibration still tell.
  }
  if ("vibrate" in navigator) navigator.vibrate([300, 150, 300]);
}

export function startRinging(): void {
  stopRinging();
  beep();
  timer = setInterval(beep, 1500);
}

export function stopRinging(): void {
  clearInterval(timer);
  timer = undefined;
  if ("vibrate" in navigator) navigator.vibrate(0);
}
