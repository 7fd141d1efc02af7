"""The strategies that `imagefit train --strategy` names: linear, scratch, finetune."""
