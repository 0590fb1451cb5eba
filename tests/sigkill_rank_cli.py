"""``python tests/sigkill_rank_cli.py RANK ITER <basicsr train args>`` (under torchrun): the
``basicsr train`` command, where on the launcher's first attempt rank RANK kills itself with
SIGKILL as training reaches iteration ITER, once the last training state saved before ITER is
complete on disk (so the test knows where the restarted group resumes). A test-side patch;
production code has no such hook."""
import os
import os.path as osp
import signal
import sys
import time

import gimsanet_arch  # noqa: F401  (shims + registries)
from basicsr.models.base_model import BaseModel
from gimsanet_arch.commands import basicsr_cli


def main():
    kill_rank, kill_iter, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    first_attempt = os.environ.get('TORCHELASTIC_RESTART_COUNT', '0') == '0'
    update_learning_rate = BaseModel.update_learning_rate

    def update_learning_rate_or_die(self, current_iter, warmup_iter=-1):
        if first_attempt and current_iter == kill_iter and int(os.environ['RANK']) == kill_rank:
            freq = self.opt['logger']['save_checkpoint_freq']
            state = osp.join(self.opt['path']['training_states'], f'{(kill_iter - 1) // freq * freq}.state')
            deadline = time.time() + 120
            while not osp.exists(state) and time.time() < deadline:
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGKILL)
        return update_learning_rate(self, current_iter, warmup_iter)

    BaseModel.update_learning_rate = update_learning_rate_or_die
    return basicsr_cli.run('train', argv, prog='sigkill_rank_cli')


if __name__ == '__main__':
    sys.exit(main())
